"""Joint meetings under concurrency, with real threads each on its own connection: two people
generating the same plan at once never create a meeting twice; two people closing the same
resolution at once close it once. On SQLite a locked database becomes a clear refusal."""
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from app import clock
from tests.test_meetings_support import body_id, count, make_meeting, make_resolution, member_units

pytestmark = pytest.mark.db

THREADS = 6


def as_user(app, username):
    from app.extensions import db
    from app.security.scope import principal_for

    with app.app_context():
        user = db.session.get(app.appbuilder.sm.user_model, db.session.execute(
            text("SELECT id FROM ab_user WHERE username = :u"), {"u": username}).scalar())
        principal = principal_for(user)
        db.session.remove()
    return principal


def race(app, principal, work):
    """Run `work(session)` in THREADS threads started together; the outcomes, in any order."""
    from app.errors import DomainError
    from app.extensions import db
    from app.security.scope import acting_as

    barrier = threading.Barrier(THREADS)
    outcomes = []

    def run():
        with app.app_context():
            try:
                with acting_as(principal):
                    barrier.wait()
                    work(db.session)
                outcomes.append("ok")
            except DomainError as exc:
                outcomes.append(type(exc).__name__ + ": " + str(exc))
            except Exception as exc:  # noqa: BLE001  (the test says what went wrong)
                outcomes.append(f"ERROR {exc!r}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_generating_the_same_plan_at_once_creates_each_meeting_once(app, ctx):
    from app.models.meetings import JointBody
    from app.services.meetings import generate_meetings

    with ctx.session() as session:
        host = session.execute(text("SELECT id FROM organization WHERE code = 'YX0101'")).scalar()
        from app.models.org import Organization

        body = JointBody(name="并发生成测试联席会", host=session.get(Organization, host))
        session.add(body)
        session.commit()
        pk = body.id

    def work(session):
        generate_meetings(session, session.get(JointBody, pk), date(2030, 1, 1), date(2030, 3, 31))

    outcomes = race(app, as_user(app, "shequ01"), work)
    assert len(outcomes) == THREADS
    assert not [o for o in outcomes if o.startswith("ERROR")], outcomes
    assert "ok" in outcomes
    assert all(o == "ok" or o.startswith("Conflict") for o in outcomes), outcomes
    # 9 旬例会 + 3 月推进会 + 1 季研讨会, each once.
    assert count(ctx, "meeting", "body_id = :b", b=pk) == 13
    assert ctx.execute(text("SELECT count(*) FROM (SELECT type, planned_date FROM meeting "
                            "WHERE body_id = :b GROUP BY type, planned_date HAVING count(*) > 1) d"),
                       {"b": pk}).scalar() == 0


def test_closing_the_same_resolution_at_once_closes_it_once(app, ctx):
    from app.models.meetings import Resolution
    from app.services.meetings import RESOLUTION_FLOW

    body = body_id(ctx)
    meeting = make_meeting(ctx, body)
    pk = make_resolution(ctx, meeting, member_units(ctx, body)[0], status="办理中",
                         deadline=clock.today() + timedelta(days=10))

    def work(session):
        row = session.get(Resolution, pk)
        RESOLUTION_FLOW.run(session, row, "close", {"result": "已完成"})

    outcomes = race(app, as_user(app, "shequ01"), work)
    assert not [o for o in outcomes if o.startswith("ERROR")], outcomes
    assert outcomes.count("ok") == 1, outcomes
    assert all(o == "ok" or o.startswith("Conflict") for o in outcomes), outcomes
    closes = ctx.execute(text("SELECT count(*) FROM audit_log WHERE resource = 'resolution' "
                              "AND record_id = :i AND action = 'transition'"),
                         {"i": str(pk)}).scalar()
    assert closes == 1
    assert ctx.execute(text("SELECT status FROM resolution WHERE id = :i"),
                       {"i": pk}).scalar() == "已办结"
