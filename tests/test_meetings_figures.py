"""The figures joint meetings feed (DOMAIN.md §5): each one GROUP BY in SQL, checked here
against rows fetched with plain SQL and counted in Python — for everyone, for a node's subtree,
and within a viewer's scope — and the star rating's attendance input."""
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from app import clock
from tests.test_meetings_support import (
    body_id,
    make_attendance,
    make_meeting,
    member_units,
    unit_of,
)

pytestmark = pytest.mark.db

START, END = date(2000, 1, 1), date(2100, 12, 31)
PRESENT = ("出席", "迟到")


def day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def quarter(value) -> str:
    d = day(value)
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def host_filter(ctx, code):
    """The bodies hosted in the subtree of the node `code` (None: all)."""
    if code is None:
        return "1=1", {}
    path = ctx.execute(text("SELECT path FROM organization WHERE code = :c"), {"c": code}).scalar()
    return ("b.host_id IN (SELECT id FROM organization WHERE path LIKE :p)", {"p": path + "%"})


def meeting_rows(ctx, code=None):
    where, params = host_filter(ctx, code)
    return ctx.execute(text(
        "SELECT m.id, m.type, m.planned_date, m.held_on, m.status FROM meeting m "
        f"JOIN joint_body b ON b.id = m.body_id WHERE m.deleted_on IS NULL AND {where}"),
        params).all()


def attendance_rows(ctx, code=None):
    where, params = host_filter(ctx, code)
    return ctx.execute(text(
        "SELECT a.unit_id, a.status, a.attendee_level, m.type, m.held_on, b.xun_level, "
        "b.monthly_level, b.quarterly_level, b.yearly_level FROM attendance a "
        "JOIN meeting m ON m.id = a.meeting_id JOIN joint_body b ON b.id = m.body_id "
        f"WHERE a.deleted_on IS NULL AND m.deleted_on IS NULL AND m.status = '已召开' AND {where}"),
        params).all()


RANKS = ["一把手", "分管领导", "党务干部", "其他"]  # higher first


def required_level(row):
    """The level the row's body requires at its meeting's type (None: no requirement)."""
    return {"旬例会": row.xun_level, "月推进会": row.monthly_level, "季研讨会": row.quarterly_level,
            "年总结会": row.yearly_level}.get(row.type)


def meets_level(row) -> bool:
    return row.attendee_level in RANKS and \
        RANKS.index(row.attendee_level) <= RANKS.index(required_level(row))


def run(app, fn, *args, username=None, **kwargs):
    """A figure computed in the app, as the system or as a user (its scope applies)."""
    from app.extensions import db
    from app.security.scope import acting_as, principal_for

    with app.app_context():
        try:
            if username is None:
                return fn(db.session, *args, **kwargs)
            user = db.session.execute(text("SELECT id FROM ab_user WHERE username = :u"),
                                      {"u": username}).scalar()
            principal = principal_for(db.session.get(app.appbuilder.sm.user_model, user))
            with acting_as(principal):
                return fn(db.session, *args, **kwargs)
        finally:
            db.session.remove()


@pytest.fixture(scope="module", autouse=True)
def some_of_every_kind(app):
    """Besides the seeded year: held meetings of each type with attendance at every level."""
    from tests.conftest import Db

    ctx = Db(app)
    body = body_id(ctx)
    units = member_units(ctx, body)
    levels = [("一把手", "出席"), ("分管领导", "出席"), ("党务干部", "迟到"), ("其他", "缺席")]
    for type_ in ("季研讨会", "年总结会", "月推进会"):
        meeting = make_meeting(ctx, body, type_)
        for unit, (level, status) in zip(units, levels):
            make_attendance(ctx, meeting, unit, level, status)
    make_meeting(ctx, body, "临时会议", held=False)


@pytest.mark.parametrize("code", [None, "YX01", "YX0202"])
def test_meetings_held_versus_planned_per_type_and_quarter(app, ctx, code):
    from app.services.meetings import meetings_held_vs_planned

    org = None if code is None else ctx.execute(
        text("SELECT id FROM organization WHERE code = :c"), {"c": code}).scalar()
    planned, held, cancelled = Counter(), Counter(), Counter()
    for _id, type_, planned_date, _held, status in meeting_rows(ctx, code):
        key = (type_, quarter(planned_date))
        planned[key] += 1
        held[key] += status == "已召开"
        cancelled[key] += status == "已取消"
    got = run(app, meetings_held_vs_planned, START, END, org)
    assert {(r["type"], r["quarter"]): (r["planned"], r["held"], r["cancelled"]) for r in got} == {
        key: (planned[key], held[key], cancelled[key]) for key in planned}
    assert planned, "the seeded year gives every node something to count"


def test_attendance_rate_and_leader_compliance(app, ctx):
    from app.services.meetings import attendance_rate, leader_compliance

    rows = attendance_rows(ctx)
    expected, present = Counter(r.type for r in rows), Counter(r.type for r in rows if r.status in PRESENT)
    got = run(app, attendance_rate, START, END)
    assert {r["type"]: (r["expected"], r["present"]) for r in got} == {
        t: (expected[t], present[t]) for t in expected}
    for r in got:
        assert r["rate"] == pytest.approx(r["present"] / r["expected"], abs=1e-4)
    judged = [r for r in rows if required_level(r) and r.status in PRESENT]
    by_type = Counter(r.type for r in judged)
    met = Counter(r.type for r in judged if meets_level(r))
    got = run(app, leader_compliance, START, END)
    assert {r["type"]: (r["present"], r["compliant"], r["non_compliant"]) for r in got} == {
        t: (by_type[t], met[t], by_type[t] - met[t]) for t in by_type}
    assert {"季研讨会", "年总结会"} <= {r["type"] for r in got if r["non_compliant"]}


def test_a_period_and_a_viewers_scope_narrow_the_figures(app, ctx):
    from app.services.meetings import attendance_rate, meetings_held_vs_planned

    last_year = (date(clock.today().year - 1, 1, 1), date(clock.today().year - 1, 12, 31))
    rows = [r for r in attendance_rows(ctx)
            if last_year[0] <= day(r.held_on) <= last_year[1]]
    got = run(app, attendance_rate, *last_year)
    assert sum(r["expected"] for r in got) == len(rows)
    # danwei03 sees only the bodies its unit belongs to: that of YX0202, the last community.
    mine = ctx.execute(text(
        "SELECT m.type, m.planned_date, m.status FROM meeting m WHERE m.deleted_on IS NULL AND "
        "m.body_id IN (SELECT body_id FROM body_member WHERE unit_id = :u AND deleted_on IS NULL)"),
        {"u": unit_of(ctx, "danwei03")}).all()
    got = run(app, meetings_held_vs_planned, START, END, username="danwei03")
    assert sum(r["planned"] for r in got) == len(mine) > 0
    everything = run(app, meetings_held_vs_planned, START, END)
    assert sum(r["planned"] for r in everything) > len(mine)


def test_resolutions_closed_on_time_and_overdue(app, ctx):
    from app.services.meetings import resolution_figures

    rows = ctx.execute(text(
        "SELECT r.deadline, r.status, r.closed_on FROM resolution r "
        "JOIN meeting m ON m.id = r.meeting_id WHERE r.deleted_on IS NULL")).all()
    want: dict[str, Counter] = {}
    for deadline, status, closed_on in rows:
        c = want.setdefault(quarter(deadline), Counter())
        c["total"] += 1
        if status == "已办结":
            c["closed"] += 1
            c["closed_on_time"] += day(closed_on) <= day(deadline)
        elif day(deadline) < clock.today():
            c["overdue"] += 1
    got = run(app, resolution_figures, START, END)
    assert {r["quarter"]: (r["total"], r["closed"], r["closed_on_time"], r["overdue"])
            for r in got} == {q: (c["total"], c["closed"], c["closed_on_time"], c["overdue"])
                              for q, c in want.items()}
    totals = Counter()
    for r in got:
        totals.update({k: r[k] for k in ("closed_on_time", "closed_late", "overdue", "open")})
    # The seed leaves resolutions in every state: on time, late, open and overdue.
    assert all(totals[k] > 0 for k in ("closed_on_time", "closed_late", "overdue", "open"))


def test_the_star_ratings_attendance_input(app, ctx):
    from app.services.meetings import unit_attendance_rate

    unit = unit_of(ctx, "danwei01")
    period = (date(clock.today().year - 1, 1, 1), clock.today())
    rows = [r for r in attendance_rows(ctx) if r.unit_id == unit
            and period[0] <= day(r.held_on) <= period[1]]
    want = sum(r.status in PRESENT for r in rows) / len(rows)
    assert run(app, unit_attendance_rate, unit, *period) == pytest.approx(want)
    # Whoever asks (a rating must not depend on who runs it); None when never recorded.
    assert run(app, unit_attendance_rate, unit, *period, username="danwei03") == pytest.approx(want)
    assert run(app, unit_attendance_rate, unit, date(1990, 1, 1), date(1990, 12, 31)) is None
    assert run(app, unit_attendance_rate, unit, clock.today() + timedelta(days=1),
               clock.today() + timedelta(days=400)) is None


def test_the_attendance_input_for_many_units_at_once(app, ctx):
    from types import SimpleNamespace

    from app.services.meetings import attendance_measure

    period = SimpleNamespace(start=date(clock.today().year - 1, 1, 1), end=clock.today())
    rows = [r for r in attendance_rows(ctx) if period.start <= day(r.held_on) <= period.end]
    units = sorted({r.unit_id for r in rows})
    never = ctx.execute(text("SELECT max(id) FROM unit")).scalar() + 1000
    got = run(app, attendance_measure, period, [*units, never])
    assert got.pop(never) is None
    assert got == pytest.approx({u: sum(r.status in PRESENT for r in rows if r.unit_id == u)
                                 / sum(1 for r in rows if r.unit_id == u) for u in units})


def test_the_dashboards_held_rate_counts_only_meetings_whose_date_has_come(app, ctx, as_user):
    """召开率: a meeting planned for tomorrow is not yet missed; one planned for yesterday and
    not held is — in the figure and on the dashboard's card alike."""
    from tests.test_dashboard_figures import figure

    def counted(day):
        period = str(day.year)
        rows = figure(as_user, "shequ01", "meetings_held_vs_planned", period=period)
        planned, held = (sum(int(r[k]) for r in rows) for k in ("planned", "held"))
        page = as_user("shequ01").get(f"/dashboard/?period={period}").get_data(as_text=True)
        assert f"已召开 {held} / 计划 {planned}" in page
        return planned, held

    body = body_id(ctx)
    tomorrow, yesterday = clock.today() + timedelta(days=1), clock.today() - timedelta(days=1)
    before = {day: counted(day) for day in (tomorrow, yesterday)}
    made = [make_meeting(ctx, body, "临时会议", held=False, planned=tomorrow)]
    try:
        assert counted(tomorrow) == before[tomorrow]
        made.append(make_meeting(ctx, body, "临时会议", held=False, planned=yesterday))
        planned, held = before[yesterday]
        assert counted(yesterday) == (planned + 1, held)
    finally:
        with ctx.session() as session:
            session.execute(text("DELETE FROM meeting WHERE id IN (:a, :b)"),
                            {"a": made[0], "b": made[-1]})
            session.commit()
