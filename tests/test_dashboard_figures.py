"""The dashboard's figures (DOMAIN.md §5) on the seeded data: each equals a count made here
independently — raw rows chosen by plain SQL with each user's scope written out by hand, and
counted in Python — for the district (zuzhibu), a community (shequ01) and a unit (danwei01).
The figures are read as each user reads them: the CSV the dashboard offers for each figure."""
import csv
import io
from collections import Counter, defaultdict
from datetime import date, datetime

import pytest
from sqlalchemy import text

from app import clock
from tests import need_limits
from tests.test_meetings_figures import meets_level, required_level

pytestmark = pytest.mark.db

USERS = ["zuzhibu", "shequ01", "danwei01"]
DONE = ("已办结", "已回访")
PUBLISHED_WISH = ("待认领", "已认领", "已实现", "已确认")
CLAIMED_WISH = ("已认领", "已实现", "已确认")
YEAR = clock.today().year  # read once: a run crossing New Year in the zone would count the old one
# The year as the figures cut it: in the zone's calendar, as UTC instants (app/clock.py).
BEGINS, ENDS = clock.day_begins(date(YEAR, 1, 1)), clock.day_begins(date(YEAR + 1, 1, 1))


# --- each user's scope, written out by hand ------------------------------------------------

class Scope:
    """SQL predicates of what a demo user may read, one per table, with `:p` (the user's
    node path) and `:u` (its unit) as parameters."""

    def __init__(self, ctx, username):
        _org_id, unit_id, path = ctx.execute(text(
            "SELECT u.org_id, u.unit_id, o.path FROM ab_user u LEFT JOIN organization o "
            "ON o.id = u.org_id WHERE u.username = :u"), {"u": username}).one()
        self.ctx, self.username, self.unit = ctx, username, unit_id
        self.kind = "all" if username == "zuzhibu" else ("unit" if unit_id else "subtree")
        self.params = {"p": (path or "") + "%", "u": unit_id}

    SUBTREE = "(SELECT id FROM organization WHERE path LIKE :p)"
    UNIT_MEMBERS = "(SELECT id FROM member WHERE work_unit_id = :u)"
    UNIT_BODIES = "(SELECT body_id FROM body_member WHERE unit_id = :u AND deleted_on IS NULL)"

    def where(self, table, a="t"):
        if self.kind == "all":
            return f"{a}.deleted_on IS NULL"
        sub, members, bodies = self.SUBTREE, self.UNIT_MEMBERS, self.UNIT_BODIES
        host = "(SELECT host_id FROM joint_body WHERE id = {})"
        rules = {
            "subtree": {
                "need": f"{a}.community_id IN {sub}",
                "micro_wish": f"{a}.community_id IN {sub}",
                "resource": f"{a}.unit_id IN (SELECT id FROM unit WHERE community_id IN {sub})",
                "service_item": f"{a}.provider_unit_id IN (SELECT id FROM unit WHERE community_id IN {sub})",
                "unit": f"{a}.community_id IN {sub}",
                "unit_registration": f"{a}.community_id IN {sub}",
                "member": f"{a}.community_id IN {sub}",
                "member_registration": f"{a}.community_id IN {sub}",
                "service_record": f"{a}.member_id IN (SELECT id FROM member WHERE community_id IN {sub})",
                "point_entry": f"({a}.member_id IN (SELECT id FROM member WHERE community_id IN {sub}) "
                               f"OR {a}.unit_id IN (SELECT id FROM unit WHERE community_id IN {sub}) "
                               f"OR {a}.community_id IN {sub})",
                "star_rating": f"({a}.member_id IN (SELECT id FROM member WHERE community_id IN {sub}) "
                               f"OR {a}.unit_id IN (SELECT id FROM unit WHERE community_id IN {sub}))",
                "meeting": f"{host.format(a + '.body_id')} IN {sub}",
                "attendance": f"(SELECT b.host_id FROM meeting m JOIN joint_body b ON b.id = m.body_id "
                              f"WHERE m.id = {a}.meeting_id) IN {sub}",
                "resolution": f"(SELECT b.host_id FROM meeting m JOIN joint_body b ON b.id = m.body_id "
                              f"WHERE m.id = {a}.meeting_id) IN {sub}",
            },
            "unit": {
                # assigned, filed, or proposed one of the unit's resources (资源对接)
                "need": f"({a}.assigned_unit_id = :u OR {a}.submitted_by_unit_id = :u OR {a}.id IN "
                        f"(SELECT m.need_id FROM need_resource m JOIN resource r ON r.id = "
                        f"m.resource_id WHERE r.unit_id = :u AND m.deleted_on IS NULL))",
                "micro_wish": f"({a}.claimant_unit_id = :u OR ({a}.status IN "
                              f"('待认领', '已认领', '已实现', '已确认') AND {a}.community_id = "
                              f"(SELECT community_id FROM unit WHERE id = :u)))",
                "resource": f"{a}.unit_id = :u",
                "service_item": f"{a}.provider_unit_id = :u",
                "unit": f"{a}.id = :u",
                "unit_registration": f"{a}.unit_id = :u",
                "member": f"{a}.work_unit_id = :u",
                "member_registration": f"{a}.member_id IN {members}",
                "service_record": f"{a}.member_id IN {members}",
                "point_entry": f"({a}.unit_id = :u OR {a}.member_id IN {members})",
                "star_rating": f"({a}.unit_id = :u OR {a}.member_id IN {members})",
                "meeting": f"{a}.body_id IN {bodies}",
                "attendance": f"({a}.unit_id = :u OR {a}.meeting_id IN "
                              f"(SELECT id FROM meeting WHERE body_id IN {bodies}))",
                "resolution": f"({a}.lead_unit_id = :u OR {a}.id IN "
                              f"(SELECT resolution_id FROM resolution_co_unit WHERE unit_id = :u))",
            },
        }
        return f"{a}.deleted_on IS NULL AND {rules[self.kind][table]}"

    def rows(self, sql, **params):
        """`sql` names its scoped table `t` and says {scope} where the predicate goes."""
        table = sql.split(" FROM ", 1)[1].split()[0]
        return self.ctx.execute(text(sql.format(scope=self.where(table))),
                                {**self.params, **params}).all()


@pytest.fixture(scope="module")
def scopes(app):
    from tests.conftest import Db

    ctx = Db(app)
    return {user: Scope(ctx, user) for user in USERS}


# --- the figures, as each user downloads them -------------------------------------------------

def figure(as_user, username, name, **args):
    """A figure's rows from its CSV, keyed like the figure function's rows."""
    from app.dashboards.views import FIGURES

    response = as_user(username).get(f"/dashboard/figure/{name}.csv", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")  # Excel opens it with the Chinese intact
    reader = csv.reader(io.StringIO(body.lstrip("\ufeff")))
    header = next(reader)
    keys = {label: key for key, label in FIGURES[name].columns.items()}
    return [{keys.get(h, h): value for h, value in zip(header, row)} for row in reader]


def number(value):
    return None if value in ("", None) else float(value)


def in_year(moment) -> bool:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment is not None and BEGINS <= moment < ENDS


# --- needs ----------------------------------------------------------------------------------

def needs_of(scope):
    rows = scope.rows("SELECT t.id, t.status, t.urgency, t.created_on, t.completed_on, t.deadline, "
                      "t.satisfaction, t.community_id, t.category_id FROM need t "
                      "WHERE {scope} AND t.created_on >= :b AND t.created_on < :e",
                      b=BEGINS, e=ENDS)
    return [r._mapping for r in rows]


def as_datetime(value):
    return value if isinstance(value, datetime) or value is None else datetime.fromisoformat(str(value))


def local_month(value) -> str:
    """The month of the zone's calendar a stored instant falls in."""
    return clock.to_local(as_datetime(value)).strftime("%Y-%m")


@pytest.mark.parametrize("username", USERS)
def test_need_figures_equal_independent_counts(as_user, scopes, username):
    needs = needs_of(scopes[username])
    assert needs, f"{username} should see needs in the seeded data"
    statuses = Counter(n["status"] for n in needs)

    funnel = {r["stage"]: int(r["count"]) for r in figure(as_user, username, "need_funnel")}
    assert funnel["群众接单"] == len(needs)
    assert funnel["平台接单"] == len(needs) - statuses["待受理"] - statuses["已驳回"]
    assert funnel["办结"] == statuses["已办结"] + statuses["已回访"]
    assert funnel["回访评单"] == statuses["已回访"]

    accepted = [n for n in needs if n["status"] != "已驳回"]
    closed = [n for n in needs if n["status"] in DONE]
    [rate] = figure(as_user, username, "need_completion_rate")
    assert (int(rate["needs"]), int(rate["closed"])) == (len(accepted), len(closed))
    assert number(rate["rate"]) == pytest.approx(len(closed) / len(accepted), abs=1e-4)

    on_time = [n for n in closed if as_datetime(n["completed_on"]) <= as_datetime(n["deadline"])]
    [row] = figure(as_user, username, "need_on_time_rate")
    assert (int(row["closed"]), int(row["on_time"])) == (len(closed), len(on_time))

    [row] = figure(as_user, username, "need_mean_time_to_close")
    if closed:
        hours = [(as_datetime(n["completed_on"]) - as_datetime(n["created_on"])).total_seconds() / 3600
                 for n in closed]
        assert number(row["hours"]) == pytest.approx(sum(hours) / len(hours), abs=0.06)
    assert int(row["closed"]) == len(closed)

    visited = [n for n in needs if n["status"] == "已回访"]
    [row] = figure(as_user, username, "need_mean_satisfaction")
    assert int(row["rated"]) == len(visited)
    if visited:
        assert number(row["mean"]) == pytest.approx(
            sum(n["satisfaction"] for n in visited) / len(visited), abs=0.006)

    now = clock.utcnow()
    by_community = defaultdict(Counter)
    for n in needs:
        c = by_community[n["community_id"]]
        c["needs"] += 1
        c["closed"] += n["status"] in DONE
        c["overdue"] += need_limits.is_overdue(n, now)
    rows = figure(as_user, username, "needs_by_community")
    assert len(rows) == len(by_community)
    assert sum(int(r["needs"]) for r in rows) == len(needs)
    assert sorted((int(r["needs"]), int(r["closed"]), int(r["overdue"])) for r in rows) == \
        sorted((c["needs"], c["closed"], c["overdue"]) for c in by_community.values())
    overdue = sum(c["overdue"] for c in by_community.values())
    assert len(figure(as_user, username, "overdue_needs")) == min(overdue, 20)
    # overdue by step: the step the status waits for
    late = Counter(need_limits.STEP_OF[n["status"]] for n in needs if need_limits.is_overdue(n, now))
    steps = figure(as_user, username, "overdue_by_step")
    assert [r["step"] for r in steps] == ["受理", "派单", "接单", "办理"]
    assert {r["step"]: int(r["overdue"]) for r in steps} == {s: late[s] for s in need_limits.STEP_OF.values()}

    categories = Counter((n["category_id"], n["status"]) for n in needs)
    rows = figure(as_user, username, "needs_by_category_and_status")
    assert sorted(int(r["count"]) for r in rows) == sorted(categories.values())

    # Per month: raised by the day raised, closed by the day of 办结 (whenever raised).
    every = scopes[username].rows("SELECT t.status, t.created_on, t.completed_on FROM need t WHERE {scope}")
    months = {r["month"]: r for r in figure(as_user, username, "needs_per_month")}
    assert len(months) == 12
    raised = Counter(local_month(n.created_on) for n in every if in_year(n.created_on))
    closed = Counter(local_month(n.completed_on) for n in every
                     if n.status in DONE and in_year(n.completed_on))
    assert {m: int(r["raised"]) for m, r in months.items() if int(r["raised"])} == dict(raised)
    assert {m: int(r["closed"]) for m, r in months.items() if int(r["closed"])} == dict(closed)


@pytest.mark.parametrize("username", USERS)
def test_match_and_claim_rates_equal_independent_counts(as_user, scopes, username):
    scope = scopes[username]
    needs = [n for n in needs_of(scope) if n["status"] != "已驳回"]
    linked = {r[0] for r in scope.ctx.execute(text(
        "SELECT l.need_id FROM service_item_need l JOIN service_item s ON s.id = l.service_item_id "
        "WHERE s.deleted_on IS NULL"))}
    # or met by a resource its unit took on (资源对接 认领)
    linked |= {r[0] for r in scope.ctx.execute(text(
        "SELECT need_id FROM need_resource WHERE status = '已认领' AND deleted_on IS NULL"))}
    [row] = figure(as_user, username, "need_match_rate")
    assert int(row["needs"]) == len(needs)
    assert int(row["matched"]) == len([n for n in needs if n["id"] in linked])

    wishes = scope.rows("SELECT t.status, t.created_on, t.claimed_on, t.fulfilled_on FROM micro_wish t "
                        "WHERE {scope}")
    published = [w for w in wishes if w.status in PUBLISHED_WISH and in_year(w.created_on)]
    [row] = figure(as_user, username, "wish_claim_rate")
    assert int(row["published"]) == len(published)
    assert int(row["claimed"]) == len([w for w in published if w.status in CLAIMED_WISH])

    months = {r["month"]: r for r in figure(as_user, username, "wishes_per_month")}
    assert len(months) == 12
    for key, column in (("posted", "created_on"), ("claimed", "claimed_on"),
                        ("fulfilled", "fulfilled_on")):
        expected = Counter(local_month(getattr(w, column)) for w in wishes
                           if getattr(w, column) is not None and in_year(getattr(w, column)))
        assert {m: int(r[key]) for m, r in months.items() if int(r[key])} == dict(expected), key


@pytest.mark.parametrize("username", USERS)
@pytest.mark.parametrize("name,table,unit_column", [
    ("resources_by_category_and_status", "resource", "unit_id"),
    ("service_items_by_category_and_status", "service_item", "provider_unit_id"),
])
def test_lists_by_category_and_status(as_user, scopes, username, name, table, unit_column):
    scope = scopes[username]
    rows = scope.rows(f"SELECT t.category_id, t.status FROM {table} t WHERE {{scope}} AND t.year = :y",
                      y=YEAR)
    expected = Counter((r.category_id, r.status) for r in rows)
    labels = dict(scope.ctx.execute(text("SELECT id, label FROM dictionary")).all())
    found = Counter()
    for r in figure(as_user, username, name):
        found[(r["category"], r["status"])] += int(r["count"])
    assert found == Counter({(labels[c], s): n for (c, s), n in expected.items()})


# --- co-building ----------------------------------------------------------------------------

@pytest.mark.parametrize("username", USERS)
def test_registration_rates_equal_independent_counts(as_user, scopes, username):
    scope = scopes[username]
    counts = defaultdict(Counter)
    for key, sql in (
            ("units", "SELECT t.community_id FROM unit t WHERE {scope} AND t.status = '在册'"),
            ("registered_units", ("SELECT t.community_id FROM unit_registration t WHERE {scope} "
                                  "AND t.status = '已报到'")),
            ("members", ("SELECT t.community_id FROM member t WHERE {scope} AND t.category = '在职' "
                         "AND t.status = '正常'")),
            ("registered_members", ("SELECT t.community_id FROM member_registration t "
                                    "WHERE {scope} AND t.status = '已报到'"))):
        for (community_id,) in scope.rows(sql):
            counts[community_id][key] += 1
    rows = figure(as_user, username, "registration_rates")
    assert len(rows) == len(counts)
    keys = ("units", "registered_units", "members", "registered_members")
    assert sorted(tuple(int(r[k]) for k in keys) for r in rows) == \
        sorted(tuple(c[k] for k in keys) for c in counts.values())
    assert sum(c["members"] for c in counts.values()) > 0


@pytest.mark.parametrize("username", USERS)
def test_points_hours_and_stars_equal_independent_counts(as_user, scopes, username):
    scope = scopes[username]
    quarters = tuple(f"{YEAR}Q{q}" for q in range(1, 5))
    entries = scope.rows("SELECT t.subject_type, t.member_id, t.unit_id, t.delta, t.period "
                         "FROM point_entry t WHERE {scope}")
    for name, subject, column in (("member_points_leaderboard", "member", "member_id"),
                                  ("unit_points_leaderboard", "unit", "unit_id")):
        sums, counts = Counter(), Counter()
        for e in entries:
            if e.subject_type == subject and e.period in quarters:
                sums[getattr(e, column)] += float(e.delta)
                counts[getattr(e, column)] += 1
        top = sorted(sums.items(), key=lambda item: (-item[1], item[0]))[:10]
        rows = figure(as_user, username, name)
        assert [number(r["points"]) for r in rows] == pytest.approx([v for _, v in top])
        assert [int(r["entries"]) for r in rows] == [counts[i] for i, _ in top]

    records = scope.rows("SELECT t.served_on, t.hours FROM service_record t WHERE {scope} "
                         "AND t.status = '已认证'")
    hours, number_of = Counter(), Counter()
    for r in records:
        day = r.served_on if isinstance(r.served_on, date) else date.fromisoformat(str(r.served_on))
        if day.year == YEAR:
            hours[day.strftime("%Y-%m")] += float(r.hours)
            number_of[day.strftime("%Y-%m")] += 1
    rows = figure(as_user, username, "service_hours_per_month")
    assert {r["month"]: number(r["hours"]) for r in rows if int(r["records"])} == \
        pytest.approx(dict(hours))
    assert {r["month"]: int(r["records"]) for r in rows if int(r["records"])} == dict(number_of)

    # The stars awarded: the latest year's published ratings up to this year (the seed's are
    # last year's — a year is rated once it is over).
    published = scope.rows("SELECT t.period FROM star_rating t WHERE {scope} "
                           "AND t.status = '已公示' AND t.period_kind = 'year' "
                           "AND t.period <= :q", q=str(YEAR))
    latest = max((r.period for r in published), default=None)
    rows = figure(as_user, username, "star_distribution")
    assert sum(int(r["count"]) for r in rows) == len([r for r in published if r.period == latest])
    assert {r["period"] for r in rows} == ({latest} if rows else set())


# --- joint meetings (the meetings service's figures, seen through the dashboard) -----------

@pytest.mark.parametrize("username", USERS)
def test_meeting_figures_equal_independent_counts(as_user, scopes, username):
    scope = scopes[username]
    start, end = date(YEAR, 1, 1), date(YEAR, 12, 31)
    meetings = scope.rows("SELECT t.type, t.status, t.planned_date FROM meeting t WHERE {scope} "
                          "AND t.planned_date >= :s AND t.planned_date <= :e", s=start,
                          e=min(end, clock.today()))  # not yet due: neither held nor missed
    rows = figure(as_user, username, "meetings_held_vs_planned")
    assert sum(int(r["planned"]) for r in rows) == len(meetings)
    assert sum(int(r["held"]) for r in rows) == len([m for m in meetings if m.status == "已召开"])

    attendance = scope.rows(
        "SELECT t.status, t.attendee_level, m.type, b.xun_level, b.monthly_level, "
        "b.quarterly_level, b.yearly_level FROM attendance t JOIN meeting m ON "
        "m.id = t.meeting_id JOIN joint_body b ON b.id = m.body_id "
        "WHERE {scope} AND m.deleted_on IS NULL AND m.status = '已召开' "
        "AND m.held_on >= :s AND m.held_on <= :e", s=start, e=end)
    rows = figure(as_user, username, "meeting_attendance_rate")
    assert sum(int(r["expected"]) for r in rows) == len(attendance)
    assert sum(int(r["present"]) for r in rows) == len(
        [a for a in attendance if a.status in ("出席", "迟到")])
    rows = figure(as_user, username, "leader_compliance")
    judged = [a for a in attendance if required_level(a) and a.status in ("出席", "迟到")]
    assert sum(int(r["present"]) for r in rows) == len(judged)
    assert sum(int(r["compliant"]) for r in rows) == len([a for a in judged if meets_level(a)])

    resolutions = scope.rows("SELECT t.status, t.deadline, t.closed_on FROM resolution t "
                             "WHERE {scope} AND t.deadline >= :s AND t.deadline <= :e", s=start, e=end)
    rows = figure(as_user, username, "resolutions_on_time")
    assert sum(int(r["total"]) for r in rows) == len(resolutions)
    assert sum(int(r["closed"]) for r in rows) == len([r for r in resolutions if r.status == "已办结"])
    assert sum(int(r["overdue"]) for r in rows) == len(
        [r for r in resolutions if r.status != "已办结" and
         (r.deadline if isinstance(r.deadline, date) else date.fromisoformat(str(r.deadline))) < clock.today()])


# --- the same figure, three viewers ----------------------------------------------------------

def test_the_same_figures_differ_between_district_community_and_unit(as_user, scopes):
    totals = {user: int(figure(as_user, user, "need_funnel")[0]["count"]) for user in USERS}
    assert totals["zuzhibu"] > totals["shequ01"] > totals["danwei01"] > 0
    communities = {user: {r["community"] for r in figure(as_user, user, "needs_by_community")}
                   for user in USERS}
    assert len(communities["shequ01"]) == 1 and communities["shequ01"] < communities["zuzhibu"]
    units = {user: sum(int(r["units"]) for r in figure(as_user, user, "registration_rates"))
             for user in USERS}
    assert units["danwei01"] == 1  # the unit directory is everyone's; its figure is the unit's
    assert units["zuzhibu"] > units["shequ01"] > units["danwei01"]
    hours = {user: sum(number(r["hours"]) for r in figure(as_user, user, "service_hours_per_month"))
             for user in USERS}
    # the unit's members live in several communities: its hours are not a part of shequ01's
    assert hours["zuzhibu"] > max(hours["shequ01"], hours["danwei01"]) > 0
    assert len(set(hours.values())) == 3


def test_a_street_chosen_by_the_district_sees_what_the_street_admin_sees(as_user, ctx):
    street = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'jiedao01'")).scalar()
    for name in ("need_funnel", "needs_by_community", "registration_rates", "wishes_per_month",
                 "service_hours_per_month", "meetings_held_vs_planned"):
        assert figure(as_user, "zuzhibu", name, org=street) == figure(as_user, "jiedao01", name), name
    assert figure(as_user, "zuzhibu", "need_funnel") != figure(as_user, "jiedao01", "need_funnel")


def test_a_period_narrows_every_figure(as_user, scopes):
    """A month: only its needs; the funnel's first step counts needs created that month."""
    month = clock.today().strftime("%Y-%m")
    needs = needs_of(scopes["zuzhibu"])
    this_month = [n for n in needs if local_month(n["created_on"]) == month]
    rows = figure(as_user, "zuzhibu", "need_funnel", period=month)
    assert int(rows[0]["count"]) == len(this_month)
    months = figure(as_user, "zuzhibu", "wishes_per_month", period=f"{YEAR}Q{(clock.today().month - 1) // 3 + 1}")
    assert len(months) == 3
    # A year long past: the seed has none there, but another module may have backfilled some.
    past = scopes["zuzhibu"].rows(
        "SELECT count(*) FROM need t WHERE {scope} AND t.created_on >= :b AND t.created_on < :e",
        b=clock.day_begins(date(YEAR - 5, 1, 1)), e=clock.day_begins(date(YEAR - 4, 1, 1)))[0][0]
    assert figure(as_user, "zuzhibu", "need_funnel", period=str(YEAR - 5))[0]["count"] == str(past)
