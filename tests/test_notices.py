"""Notices (issue 23): the outbox written with the move that causes it, the message centre
(bell, list, read), scoped like everything else, and delivery by e-mail and webhook —
at least once, each notice once at the receiver by its key, a failing channel never blocking
the move."""
import hashlib
import hmac
import json
import re
import smtplib
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import delete, select, text, update

from app import clock
from app.errors import DomainError
from app.extensions import db
from app.models.lists import Need, NeedStatus
from app.models.notices import Notice, NoticeStatus
from app.security.models import UserAccount
from app.security.principal import acting_as, principal_for, unscoped
from app.services import notices
from app.services.lists import NEED_FLOW
from tests.conftest import DEMO_USERS, tables_kept_by
from tests.need_limits import refill_step_due

pytestmark = pytest.mark.db


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    with tables_kept_by(app):
        yield


@pytest.fixture(autouse=True)
def _no_notices(app):
    """Each test starts with an empty outbox and the demo users' channels off."""
    with app.app_context():
        db.session.execute(delete(Notice))
        db.session.execute(update(UserAccount).values(notify_email=False, notify_webhook=False))
        db.session.commit()
    yield


def write(ctx, statement, params=None):
    with ctx.session() as session:
        session.execute(statement, params or {})
        session.commit()


def user_id(ctx, username):
    return ctx.execute(text("SELECT id FROM ab_user WHERE username=:u"), {"u": username}).scalar()


@contextmanager
def as_user(app, username):
    """A request of `username` (its scope), for service-level moves."""
    with app.test_request_context():
        with unscoped():
            user = db.session.scalar(select(UserAccount).where(UserAccount.username == username))
            principal = principal_for(user)
        with acting_as(principal):
            yield db.session


def liaisons_of(ctx, unit_id):
    return set(ctx.execute(text(
        "SELECT u.id FROM ab_user u JOIN ab_user_role ur ON ur.user_id=u.id "
        "JOIN ab_role r ON r.id=ur.role_id WHERE r.name='UnitLiaison' AND u.unit_id=:unit "
        "AND u.active"), {"unit": unit_id}).scalars())


def community_admins_of(ctx, org_id):
    return set(ctx.execute(text(
        "SELECT u.id FROM ab_user u JOIN ab_user_role ur ON ur.user_id=u.id "
        "JOIN ab_role r ON r.id=ur.role_id WHERE r.name='CommunityAdmin' AND u.org_id=:org "
        "AND u.active"), {"org": org_id}).scalars())


@pytest.fixture
def accepted_need(app, ctx):
    """A need of shequ01's community in 已受理, with markup in its title."""
    def make(title="<script>alert(1)</script>漏水&维修"):
        community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
        category = ctx.execute(text(
            "SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()
        with as_user(app, "shequ01") as session:
            need = Need(community_id=community, category_id=category, title=title,
                        content="内容", urgency="一般", source="社区")
            session.add(need)
            session.commit()
            NEED_FLOW.run(session, need, "accept")
            return need.id
    return make


def move(app, username, need_id, name, **data):
    with as_user(app, username) as session:
        need = session.get(Need, need_id)
        NEED_FLOW.run(session, need, name, data)


def danwei01_unit(ctx):
    return ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()


def panel_notices(ctx):
    return ctx.execute(text(
        "SELECT event_key, event, recipient_id FROM notice WHERE channel='panel'")).all()


# --- the outbox: one message per recipient per move, written with the move ------------------

def test_a_thousand_moves_tell_each_intended_recipient_once_per_move(app, ctx, accepted_need,
                                                                     database_url):
    """500 dispatches to danwei01's unit and 500 declines by its liaison: each dispatch tells
    the unit's liaison(s), each decline the community's admins — exactly once each."""
    need_id = accepted_need("千次派单")
    unit = danwei01_unit(ctx)
    community = ctx.execute(text("SELECT community_id FROM need WHERE id=:i"), {"i": need_id}).scalar()
    shequ01, danwei01 = user_id(ctx, "shequ01"), user_id(ctx, "danwei01")
    write(ctx, text("DELETE FROM notice"))
    liaisons, admins = liaisons_of(ctx, unit) - {shequ01}, community_admins_of(ctx, community) - {danwei01}
    assert danwei01 in liaisons and shequ01 in admins
    # The thousand moves on SQLite (`make test`); a hundred on the servers' stage.
    rounds = 500 if database_url.startswith("sqlite") else 50
    for _ in range(rounds):
        move(app, "shequ01", need_id, "dispatch", assigned_unit=unit)
        move(app, "danwei01", need_id, "decline", reason="人手不足")
    rows = panel_notices(ctx)
    dispatched = [r for r in rows if r.event == "need_dispatched"]
    declined = [r for r in rows if r.event == "need_declined"]
    assert len(dispatched) == rounds * len(liaisons) and len(declined) == rounds * len(admins)
    assert {r.recipient_id for r in dispatched} == liaisons
    assert {r.recipient_id for r in declined} == admins
    # One key per move: each move's key names each of its recipients once.
    assert len({r.event_key for r in dispatched}) == rounds
    assert len({(r.event_key, r.recipient_id) for r in rows}) == len(rows)
    # Nobody is told of their own move, and nobody else is told at all.
    assert len(rows) == rounds * (len(liaisons) + len(admins))


def test_a_rolled_back_move_sends_nothing(app, ctx, accepted_need, monkeypatch):
    """The notices are written, then the move fails before its commit (here: right after
    them): the move and its notices roll back together."""
    need_id = accepted_need("回滚")
    write(ctx, text("DELETE FROM notice"))
    written = []
    real = notices.on_move

    def then_fail(session, obj, name, actor_id):
        written.append(real(session, obj, name, actor_id))
        assert session.execute(text("SELECT count(*) FROM notice")).scalar() > 0
        raise DomainError("保存失败")
    monkeypatch.setattr(notices, "on_move", then_fail)
    with pytest.raises(DomainError):
        move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx))
    assert written and written[0] >= 1
    assert ctx.execute(text("SELECT count(*) FROM notice")).scalar() == 0
    assert ctx.execute(text("SELECT status FROM need WHERE id=:i"), {"i": need_id}).scalar() \
        == NeedStatus.ACCEPTED
    # A move refused by its own rule writes nothing either.
    monkeypatch.setattr(notices, "on_move", real)
    with pytest.raises(DomainError):
        move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx),
             deadline=clock.local_text(clock.utcnow() - timedelta(days=1)))
    assert ctx.execute(text("SELECT count(*) FROM notice")).scalar() == 0


def test_a_notice_goes_only_to_recipients_who_may_read_the_row(app, ctx, accepted_need):
    """danwei03 is the liaison of a unit in another street: a need of shequ01's community is
    not its to read, so even named as a recipient it is not told."""
    need_id = accepted_need("范围")
    danwei03 = user_id(ctx, "danwei03")
    with as_user(app, "shequ01") as session:
        need = session.get(Need, need_id)
        assert not notices.may_read_as(session, session.get(UserAccount, user_id(ctx, "danwei01")), need)
    move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx))
    with as_user(app, "shequ01") as session:
        need = session.get(Need, need_id)
        reader = session.get(UserAccount, user_id(ctx, "danwei01"))
        stranger = session.get(UserAccount, danwei03)
        assert notices.may_read_as(session, reader, need) is True
        assert notices.may_read_as(session, stranger, need) is False


# --- the message centre ---------------------------------------------------------------------

def bell(browser):
    page = browser.get("/need/list/").get_data(as_text=True)
    return int(re.search(r'class="sr-only gj-bell-unread">(\d+)<', page).group(1))


def test_the_bell_counts_the_unread_list_for_every_demo_user(app, ctx, accepted_need, as_user):
    need_id = accepted_need()
    move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx))
    move(app, "danwei01", need_id, "take")
    move(app, "danwei01", need_id, "complete", result="已修好<b>粗体</b>")
    for username in DEMO_USERS:
        browser = as_user(username)
        page = browser.get("/messages/").get_data(as_text=True)
        unread_rows = page.count('class="gj-unread"')
        assert bell(browser) == unread_rows, username
        phone = browser.get("/m/")  # the phone pages ring the same bell
        assert phone.status_code == 200, username
        assert int(re.search(r'gj-bell-unread[^"]*">(\d+)<', phone.get_data(as_text=True))
                   .group(1)) == unread_rows, username
    danwei01 = as_user("danwei01")
    assert bell(danwei01) == 1
    page = danwei01.get("/messages/").get_data(as_text=True)
    # Markup in the title is inert: escaped text, no tag.
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;漏水&amp;维修" in page
    notice_id = int(re.search(r'href="/messages/(\d+)"', page).group(1))
    opened = danwei01.get(f"/messages/{notice_id}")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/need/show/{need_id}")
    assert bell(danwei01) == 0
    # Another user's message does not exist for it.
    assert as_user("danwei02").get(f"/messages/{notice_id}").status_code == 404
    shequ01 = as_user("shequ01")
    assert bell(shequ01) == 2  # taken, completed
    shequ01.post("/messages/read-all", form_url="/messages/")
    assert bell(shequ01) == 0


def test_a_message_whose_row_left_the_recipients_scope_is_neither_shown_nor_counted(
        app, ctx, accepted_need, as_user):
    need_id = accepted_need("后来看不到")
    move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx))
    danwei01 = as_user("danwei01")
    assert bell(danwei01) == 1
    move(app, "danwei01", need_id, "decline", reason="不属本单位")  # no longer dispatched to it
    assert bell(danwei01) == 0
    assert 'class="gj-unread"' not in danwei01.get("/messages/").get_data(as_text=True)
    notice_id = ctx.execute(text("SELECT id FROM notice WHERE recipient_id=:u"),
                            {"u": user_id(ctx, "danwei01")}).scalar()
    assert danwei01.get(f"/messages/{notice_id}").status_code == 404


# --- delivery ---------------------------------------------------------------------------------

class Receiver:
    """A local webhook: answers 500 to the first `failures` calls, then 200; remembers each
    body it accepted (with its signature checked)."""

    def __init__(self, secret, failures=0, delay=0.0):
        self.secret, self.failures, self.calls = secret.encode(), failures, 0
        self.delay = delay
        self.accepted, self.bad_signatures = [], 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)  # a gateway that takes its time
                receiver.calls += 1
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                if self.headers["X-GongJian-Signature"] != expected:
                    receiver.bad_signatures += 1
                    self.send_response(401)
                elif receiver.calls <= receiver.failures:
                    self.send_response(500)
                else:
                    receiver.accepted.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def configured(app, **values):
    saved = {k: app.config.get(k) for k in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(saved)


def deliver(app, **kw):
    with app.app_context():
        return notices.deliver(db.session, **kw)


def webhook_keys(ctx) -> set[str]:
    """The keys the webhook's bodies carry, one per notice (event, recipient, channel)."""
    return {f"{key}:{recipient}:{channel}" for key, recipient, channel in ctx.execute(text(
        "SELECT event_key, recipient_id, channel FROM notice WHERE channel='webhook'"))}


def webhook_moves(app, ctx, accepted_need, needs, title):
    """danwei01 and shequ01 take the webhook; `needs` needs are dispatched to danwei01's unit
    (telling danwei01) and taken (telling shequ01). The notices' keys, and the last need."""
    write(ctx, text("UPDATE ab_user SET notify_webhook=:t WHERE username IN "
                    "('danwei01', 'shequ01')"), {"t": True})
    unit = danwei01_unit(ctx)
    for i in range(needs):
        need_id = accepted_need(f"{title}{i}")
        move(app, "shequ01", need_id, "dispatch", assigned_unit=unit)
        move(app, "danwei01", need_id, "take")
    return webhook_keys(ctx), need_id


def make_due(ctx):
    """Time passes: every retry is due now."""
    write(ctx, text("UPDATE notice SET next_try_on=:t WHERE status='pending'"),
                {"t": clock.utcnow() - timedelta(seconds=1)})


def test_webhook_failing_half_the_run_and_a_killed_run_still_deliver_each_notice_once(
        app, ctx, accepted_need, monkeypatch):
    receiver = Receiver("s3cret")
    try:
        with configured(app, NOTIFY_WEBHOOK_URL=receiver.url, NOTIFY_WEBHOOK_SECRET="s3cret",
                        NOTIFY_BATCH=7, NOTIFY_STALE_SECONDS=0):
            keys, need_id = webhook_moves(app, ctx, accepted_need, 10, "<i>网关</i>")
            assert len(keys) == 20
            receiver.failures = 10  # the first half of the calls fail
            # A run killed mid-delivery: it sent its first row, then died before recording it.
            sent = notices.send_webhook

            def killed_after_one(notice, user):
                sent(notice, user)
                raise KeyboardInterrupt("worker killed")
            monkeypatch.setattr(notices, "send_webhook", killed_after_one)
            receiver.failures = 0
            with pytest.raises(KeyboardInterrupt):
                deliver(app)
            monkeypatch.setattr(notices, "send_webhook", sent)
            receiver.failures = receiver.calls + 10
            for _ in range(10):
                deliver(app)
                make_due(ctx)
            statuses = ctx.execute(text("SELECT status, count(*) FROM notice WHERE "
                                        "channel='webhook' GROUP BY status")).all()
            assert dict(statuses) == {"sent": 20}
    finally:
        receiver.close()
    assert receiver.bad_signatures == 0
    arrived = [body["key"] for body in receiver.accepted]
    # Every notice arrived; the one the killed run had sent arrived again (at least once), and
    # the key says so: by key, each arrives once.
    assert set(arrived) == keys
    assert len(arrived) == len(keys) + 1
    # Markup is JSON-encoded text in the body, nothing more.
    taken = next(b for b in receiver.accepted if b["event"] == "need_taken"
                 and b["record_id"] == need_id)
    assert taken["text"] == "需求“<i>网关</i>9”已接单办理"
    assert taken["link"].endswith(f"/need/show/{need_id}")


def test_a_failing_channel_never_blocks_the_move_and_is_retried_with_backoff(
        app, ctx, accepted_need):
    with configured(app, NOTIFY_WEBHOOK_URL="http://127.0.0.1:9/none", NOTIFY_RETRY_SECONDS=30,
                    NOTIFY_MAX_ATTEMPTS=3, NOTIFY_TIMEOUT_SECONDS=2):
        write(ctx, text("UPDATE ab_user SET notify_webhook=:t WHERE username='danwei01'"),
                    {"t": True})
        need_id = accepted_need("不通")
        move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx))
        assert ctx.execute(text("SELECT status FROM need WHERE id=:i"), {"i": need_id}).scalar() \
            == NeedStatus.DISPATCHED
        waits = []
        for _ in range(3):
            before = clock.utcnow()
            deliver(app)
            with ctx.session() as session:
                row = session.scalars(select(Notice).where(Notice.channel == "webhook")).one()
            waits.append(round((row.next_try_on - before).total_seconds() / 30))
            make_due(ctx)
        assert waits == [1, 2, 4]
        assert row.status == NoticeStatus.FAILED and row.attempts == 3 and "webhook" in row.error


def test_a_recipient_deactivated_before_delivery_is_dropped_and_recorded(app, ctx, accepted_need):
    with configured(app, NOTIFY_WEBHOOK_URL="http://127.0.0.1:9/none"):
        write(ctx, text("UPDATE ab_user SET notify_webhook=:t WHERE username='danwei01'"),
                    {"t": True})
        need_id = accepted_need("停用")
        move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx))
        write(ctx, text("UPDATE ab_user SET active=:f WHERE username='danwei01'"), {"f": False})
        try:
            assert deliver(app)[NoticeStatus.DROPPED] == 1
        finally:
            write(ctx, text("UPDATE ab_user SET active=:t WHERE username='danwei01'"), {"t": True})
        row = ctx.execute(text("SELECT status, error FROM notice WHERE channel='webhook'")).one()
        assert row.status == NoticeStatus.DROPPED and "停用" in row.error


def test_email_is_plain_text_and_escaped_html(app, ctx, accepted_need, monkeypatch):
    sent = []

    class FakeSMTP:
        def __init__(self, host, port, timeout):
            assert (host, port) == ("mail.test", 2525)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_message(self, message):
            sent.append(message)

    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    with configured(app, MAIL_SERVER="mail.test", MAIL_PORT=2525):
        write(ctx, text("UPDATE ab_user SET notify_email=:t WHERE username='danwei01'"),
                    {"t": True})
        need_id = accepted_need('<img src=x onerror="alert(1)">水管')
        move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx))
        assert deliver(app)[NoticeStatus.SENT] == 1
    (message,) = sent
    plain = message.get_body(("plain",)).get_content()
    markup = message.get_body(("html",)).get_content()
    assert '<img src=x onerror="alert(1)">水管' in plain
    assert "<img" not in markup and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;水管" in markup
    assert message["X-GongJian-Key"].startswith("need_dispatched:need:")


# --- scheduled notices --------------------------------------------------------------------------

def test_scheduled_deadline_notices_are_written_once_however_often_the_scan_runs(
        app, ctx, accepted_need):
    need_id = accepted_need("时限")
    move(app, "shequ01", need_id, "dispatch", assigned_unit=danwei01_unit(ctx))
    write(ctx, text("DELETE FROM notice"))
    # 一般: an hour from intake; 接单 is due at 30 minutes (受理 10 %, 派单 20 %, 接单 20 %), its
    # step beginning at 18: 80 % of it is past at 27.6 minutes.
    intake = clock.utcnow().replace(microsecond=0) - timedelta(minutes=28, seconds=30)
    write(ctx, text("UPDATE need SET created_on=:c WHERE id=:i"), {"c": intake, "i": need_id})
    refill_step_due(ctx)  # moved in SQL: the list's stored order follows
    with app.app_context():
        need = db.session.get(Need, need_id)
        assert notices.step_deadline(need) == (intake + timedelta(minutes=18),
                                               intake + timedelta(minutes=30))
        for _ in range(2):  # past 80 % of the step
            notices.scan(db.session)
            db.session.commit()
        for _ in range(2):  # an hour later: passed
            notices.scan(db.session, now=clock.utcnow() + timedelta(hours=1))
            db.session.commit()
    rows = ctx.execute(text("SELECT event, recipient_id FROM notice WHERE record_id=:i AND "
                            "resource='need' AND channel='panel'"), {"i": need_id}).all()
    danwei01, shequ01 = user_id(ctx, "danwei01"), user_id(ctx, "shequ01")
    assert sorted((r.event, r.recipient_id) for r in rows if r.recipient_id in (danwei01, shequ01)) \
        == sorted([("need_deadline_near", danwei01), ("need_overdue", danwei01),
                   ("need_overdue", shequ01)])
    assert len(rows) == len(set(rows))


def test_the_events_table_has_every_text_in_the_english_catalog():
    from babel.messages.pofile import read_po

    with open("app/translations/en/LC_MESSAGES/messages.po", "rb") as handle:
        catalog = read_po(handle)
    for event in notices.EVENTS.values():
        assert catalog.get(event.text) is not None and catalog.get(event.text).string, event.code
    assert set(notices.MOVES.values()) <= set(notices.EVENTS)


def test_the_count_query_is_one_statement(app, ctx):
    with as_user(app, "shequ01") as session:
        statements = []
        from sqlalchemy import event as sa_event

        def count(*args):
            statements.append(args[2])
        sa_event.listen(db.engine, "before_cursor_execute", count)
        try:
            notices.unread_count(session, user_id(ctx, "shequ01"))
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", count)
    assert len([s for s in statements if "notice" in s]) == 1


def test_a_resolution_created_tells_its_lead_and_co_units_liaisons(ctx, api):
    from tests.test_meetings_support import body_id, make_meeting, member_units

    body = body_id(ctx)
    meeting = make_meeting(ctx, body)
    units = member_units(ctx, body)
    lead, co = units[0], units[1:3]
    # Made by the system (a seed, a migration): nobody is told.
    assert ctx.execute(text("SELECT count(*) FROM notice")).scalar() == 0
    client, headers = api("shequ01")
    response = client.post("/api/v1/resolution/", headers=headers, json={
        "meeting": meeting, "content": "<b>加装电梯</b>意见征询", "lead_unit": lead,
        "co_units": co, "deadline": str(clock.today() + timedelta(days=10))})
    assert response.status_code == 201, response.get_data(as_text=True)
    told = set(ctx.execute(text(
        "SELECT recipient_id FROM notice WHERE event='resolution_assigned' AND channel='panel' "
        "AND record_id=:i"), {"i": response.json["id"]}).scalars())
    expected = set().union(*(liaisons_of(ctx, unit) for unit in [lead, *co]))
    assert expected and told == expected


def test_each_user_chooses_its_channels_in_its_user_info(app, ctx, as_user, accepted_need):
    browser = as_user("danwei02")
    form = browser.get("/userinfoeditview/form").get_data(as_text=True)
    assert 'name="notify_email"' in form and 'name="notify_webhook"' in form
    answer = browser.post("/userinfoeditview/form", {
        "first_name": "单位二", "last_name": "联络员", "notify_webhook": "y"})
    assert answer.status_code == 302
    row = ctx.execute(text("SELECT notify_email, notify_webhook FROM ab_user "
                           "WHERE username='danwei02'")).one()
    assert (bool(row.notify_email), bool(row.notify_webhook)) == (False, True)
    # Chosen, and the deployment has a webhook: its notices take that channel too.
    with configured(app, NOTIFY_WEBHOOK_URL="http://127.0.0.1:9/none"):
        need_id = accepted_need("渠道")
        unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei02'")).scalar()
        move(app, "shequ01", need_id, "dispatch", assigned_unit=unit)
    channels = set(ctx.execute(text(
        "SELECT channel FROM notice WHERE recipient_id=:u AND record_id=:i"),
        {"u": user_id(ctx, "danwei02"), "i": need_id}).scalars())
    assert channels == {"panel", "webhook"}


def test_the_scheduled_scan_on_the_25th_writes_each_reminder_once(app, ctx):
    """Agreements expiring, resolutions near and past their deadline, members without service
    this month: written by the first run, none by the second."""
    local = clock.local_now().replace(day=25, hour=12, minute=0, second=0, microsecond=0)
    now = clock.to_utc(local)
    with app.app_context():
        first = notices.scan(db.session, now=now)
        db.session.commit()
        second = notices.scan(db.session, now=now)
        db.session.commit()
    assert first["member_unserved"] > 0 and sum(second.values()) == 0
    rows = ctx.execute(text(
        "SELECT n.recipient_id, n.record_id, u.member_id, u.unit_id, m.work_unit_id FROM notice n "
        "JOIN ab_user u ON u.id = n.recipient_id JOIN member m ON m.id = n.record_id "
        "WHERE n.event = 'member_unserved' AND n.channel = 'panel'")).all()
    assert len(rows) == first["member_unserved"]
    month = local.date().replace(day=1)
    for row in rows:
        # To the member itself or its unit's liaison, about a member without service this month.
        assert row.member_id == row.record_id or row.unit_id == row.work_unit_id
        served = ctx.execute(text(
            "SELECT count(*) FROM service_record WHERE member_id=:m AND served_on >= :f "
            "AND served_on <= :t AND deleted_on IS NULL"),
            {"m": row.record_id, "f": month, "t": local.date()}).scalar()
        assert served == 0
