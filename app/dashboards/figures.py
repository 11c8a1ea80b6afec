"""The figures of DOMAIN.md §5, one function per figure: ``figure(session, period, org_id=None)
-> rows`` (a list of dicts). Each is computed by GROUP BY / aggregates in SQL through the
session, whose reads are already scoped to whoever is viewing (`app.security.scope`): a
liaison's figures are its unit's, a community admin's its community's, with nothing to do here.
`org_id` narrows to a node's subtree by the same predicate the drill-down lists filter with
(`placed_under`, the models' own scope declarations), so a figure and its list agree.

The meetings' figures are the meetings service's (`app.services.meetings`); they are called
here, not re-implemented.
"""
from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, extract, func, literal_column, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app import clock, rollups
from app.dashboards import levels
from app.errors import DomainError
from app.i18n import N_
from app.models.cobuild import (
    EXPIRY_WARNING_DAYS,
    Agreement,
    AgreementStatus,
    MemberRegistration,
    MemberRegistrationStatus,
    PointEntry,
    RatingStatus,
    RecordStatus,
    ServiceRecord,
    StarRating,
    UnitRegistration,
    UnitRegistrationStatus,
    served_between,
)
from app.models.lists import (
    NEED_DONE,
    NEED_STATUSES,
    NEED_STEPS,
    WISH_PUBLISHED,
    MicroWish,
    Need,
    NeedStatus,
    Resource,
    ServiceItem,
)
from app.models.org import Dictionary, Member, MemberStatus, Organization, Unit, UnitStatus
from app.models.rollups import PointBalance, PointsPaidCell
from app.security.scope import current_principal, owner_clause, placed_under
from app.services import meetings as meeting_figures
from app.services.cobuild import AgreementOnes

# --- periods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A year (2026), a quarter (2026Q3) or a month (2026-07): first and last day, inclusive."""

    code: str
    start: date
    end: date

    def due(self) -> Period:
        """The part of the period that has come (up to today)."""
        return Period(self.code, self.start, min(self.end, clock.today()))

    @property
    def kind(self) -> str:
        if self.start.month == 1 and self.end.month == 12:
            return "year"
        return "quarter" if self.start.month != self.end.month else "month"

    @property
    def year(self) -> int:
        return self.start.year

    @property
    def label(self) -> str:
        if self.kind == "year":
            return f"{self.year}年"
        if self.kind == "quarter":
            return f"{self.year}年第{(self.start.month - 1) // 3 + 1}季度"
        return f"{self.year}年{self.start.month}月"

    @property
    def begins(self) -> datetime:
        """The period's first instant (naive UTC: its first day begins in the zone's calendar)."""
        return clock.day_begins(self.start)

    @property
    def ends(self) -> datetime:
        """The first moment after the period (exclusive bound of a date-time column)."""
        return clock.day_ends(self.end)

    @property
    def quarters(self) -> list[str]:
        """The ledger's quarters the period falls in (a month: the quarter it is part of)."""
        first, last = (self.start.month - 1) // 3 + 1, (self.end.month - 1) // 3 + 1
        return [f"{self.year}Q{q}" for q in range(first, last + 1)]

    @property
    def rating_period(self) -> str:
        """The star ratings of the period: the year's award, or the quarter's rating."""
        return str(self.year) if self.kind == "year" else self.quarters[0]

    @property
    def months(self) -> list[tuple[int, int]]:
        return [(self.year, m) for m in range(self.start.month, self.end.month + 1)]

    def contains(self, moment: datetime) -> bool:
        return self.begins <= moment < self.ends


def parse_period(text: str | None, today: date | None = None) -> Period:
    """'2026', '2026Q3' or '2026-07' (the meetings' parser); empty means this year."""
    today = today or clock.today()
    raw = (text or "").strip() or str(today.year)
    start, end = meeting_figures.parse_period(raw)
    if start.month == 1 and end.month == 12:
        code = str(start.year)
    elif start.month != end.month:
        code = f"{start.year}Q{(start.month - 1) // 3 + 1}"
    else:
        code = f"{start.year}-{start.month:02d}"
    return Period(code, start, end)


def period_choices(today: date | None = None) -> list[Period]:
    """What the period box offers: this year and last, their quarters, the last 12 months."""
    today = today or clock.today()
    this_quarter = (today.month - 1) // 3 + 1
    codes = [str(today.year), str(today.year - 1)]
    codes += [f"{today.year}Q{q}" for q in range(this_quarter, 0, -1)]
    codes += [f"{today.year - 1}Q{q}" for q in range(4, 0, -1)]
    year, month = today.year, today.month
    for _ in range(12):
        codes.append(f"{year}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return [parse_period(code, today) for code in codes]


# --- helpers ------------------------------------------------------------------------------------

def org_path(session, org_id: int | None) -> str | None:
    """The materialised path of the chosen node (read through the session: within scope)."""
    if org_id is None:
        return None
    path = session.execute(select(Organization.path).where(Organization.id == org_id)).scalar()
    if path is None:
        raise DomainError("所选党组织不存在或超出您的数据范围", "org")
    return path


def _under(session, model, org_id):
    path = org_path(session, org_id)
    return true() if path is None else placed_under(model, path)


def _ledger_under(session, org_id):
    """The point ledger's entries under the node (`placed_under`: the subject member's or
    unit's community, or the community that booked the entry), each placing asked as
    `= ANY(ARRAY(…))` on PostgreSQL. There the IN form read every entry of the period's
    quarters (330,000 a quarter in a city) and tested each against the node's members, units
    and communities — the planner chose a scan of the quarters' heap pages and a scan of all
    600,000 members — 1 to 2 s for each of a node's leaderboards and 积分发放; as arrays, the
    node's members and units are read by their community index and their entries by the
    subject's index (a street's year: 2.0 s → 0.1 s). Elsewhere the IN form, unchanged."""
    return rollups.as_arrays(session, _under(session, PointEntry, org_id))


def _in_period(column, period: Period):
    """A date-time column within the period (as the drill-down's greater/smaller filters)."""
    return and_(column >= period.begins, column < period.ends)


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def ratio(part, whole):
    return round(part / whole, 4) if whole else None


def _community_names(session, ids) -> dict[int, str]:
    return {i: node.name for i, node in levels.nodes_of(session, ids).items()}


def _month_keys(column):
    return extract("year", column), extract("month", column)


def _seconds_between(session, start, end):
    """end − start in seconds, in the database's own arithmetic."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return extract("epoch", end - start)
    if dialect in ("mysql", "mariadb"):
        return func.timestampdiff(literal_column("SECOND"), start, end)
    return (func.julianday(end) - func.julianday(start)) * 86400


# --- the three lists ----------------------------------------------------------------------------

def _category_labels(session, ids) -> dict[int, str]:
    """The categories' labels, read once for the counted rows (a join labelled every row)."""
    ids = {i for i in ids if i is not None}
    return dict(session.execute(select(Dictionary.id, Dictionary.label)
                                .where(Dictionary.id.in_(ids))).all()) if ids else {}


def _by_category_and_status(session, model, period, org_id, in_period):
    counted = session.execute(
        select(model.category_id, model.status, func.count()).select_from(model)
        .where(in_period, _under(session, model, org_id))
        .group_by(model.category_id, model.status)).all()
    labels = _category_labels(session, [c for c, _, _ in counted])
    rows = [{"category_id": c, "category": labels.get(c) or "—", "status": s, "count": int(n)}
            for c, s, n in counted]
    return sorted(rows, key=lambda r: (r["category"], r["status"]))


def resources_by_category_and_status(session, period: Period, org_id=None):
    """资源清单 of the period's year, by category and status."""
    return _by_category_and_status(session, Resource, period, org_id,
                                   Resource.year == period.year)


def service_items_by_category_and_status(session, period: Period, org_id=None):
    """服务清单 of the period's year, by category and status."""
    return _by_category_and_status(session, ServiceItem, period, org_id,
                                   ServiceItem.year == period.year)


def needs_by_category_and_status(session, period: Period, org_id=None):
    """需求清单 raised in the period, by category and status."""
    found = _need_sums(session, period, org_id, lambda t: (
        (t.c.category_id, Dictionary.label, t.c.status), (func.sum(t.c.count),)))
    if found is None:
        return _by_category_and_status(session, Need, period, org_id,
                                       _in_period(Need.created_on, period))
    rows = [{"category_id": c, "category": label or "—", "status": s, "count": int(n)}
            for c, label, s, n in found]
    return sorted(rows, key=lambda r: (r["category"], r["status"]))


def _need_sums(session, period: Period, org_id, keys_and_sums, kind="raised"):
    """The needs rollup's sums over the period's months under the node, grouped by keys (a
    category's label joined by its id): `keys_and_sums(table)` gives both, of the node cells
    or the community cells the viewer reads (rollups.cells) — or None where the viewer's scope
    is not on the cells' keys (a liaison: needs dispatched to or filed by its unit; a grid; a
    member): the raw query then. `kind`: the needs raised in each month, or closed in it."""
    found = rollups.cells(session, rollups.Needs.name, org_path(session, org_id))
    if found is None or not rollups.readable(session, rollups.Needs.name):
        return None
    count, cells = found
    keys, sums = keys_and_sums(count)
    stmt = (select(*keys, *sums).select_from(count)
            .where(cells, count.c.kind == kind, count.c.year == period.year,
                   count.c.month.between(period.start.month, period.end.month)))
    if any(key is Dictionary.label for key in keys):
        stmt = stmt.outerjoin(Dictionary, Dictionary.id == count.c.category_id)
    return session.execute(stmt.group_by(*keys) if keys else stmt).all()


# The five-step loop as a funnel: how many needs reached each step (DOMAIN.md §3).
FUNNEL = [
    ("群众接单", tuple(NEED_STATUSES)),
    ("平台接单", (NeedStatus.ACCEPTED, NeedStatus.DISPATCHED, NeedStatus.IN_HAND, *NEED_DONE)),
    ("会商派单", (NeedStatus.DISPATCHED, NeedStatus.IN_HAND, *NEED_DONE)),
    ("单位接单", (NeedStatus.IN_HAND, *NEED_DONE)),
    ("办结", NEED_DONE),
    ("回访评单", (NeedStatus.VISITED,)),
]


def need_funnel(session, period: Period, org_id=None):
    """Needs raised in the period that reached each step of the loop (one GROUP BY status)."""
    found = _need_sums(session, period, org_id,
                       lambda t: ((t.c.status,), (func.sum(t.c.count),)))
    if found is None:
        found = session.execute(
            select(Need.status, func.count(Need.id))
            .where(_in_period(Need.created_on, period), _under(session, Need, org_id))
            .group_by(Need.status)).all()
    by_status = {status: int(n) for status, n in found}
    return [{"stage": stage, "statuses": list(statuses),
             "count": sum(by_status.get(s, 0) for s in statuses)} for stage, statuses in FUNNEL]


def _needs_in(session, period, org_id):
    return and_(_in_period(Need.created_on, period), _under(session, Need, org_id))


# The statuses a need can be late at (受理, 派单, 接单, 办理): `Need.overdue` is false at every
# other. Said again beside it so that the overdue figures read the open needs' index by status
# and date (ix_need_live_open, which holds each step's columns) rather than every need raised.
OPEN_STEPS = tuple(status for status, _step in NEED_STEPS)


def _overdue_in(session, period, org_id):
    """Needs raised in the period under the node and late now (`Need.overdue`)."""
    return and_(_open_in(session, period, org_id), Need.overdue)


def _open_in(session, period, org_id):
    """Needs raised in the period under the node and open at a step: the rows the overdue
    counts test, each counted by `_count_if(Need.overdue)` — in WHERE, the overdue test's OR
    of statuses made PostgreSQL read each need's row (a bitmap per status) where the index
    holds every column it tests."""
    return and_(Need.status.in_(OPEN_STEPS), _needs_in(session, period, org_id))


def need_completion_rate(session, period: Period, org_id=None):
    """办结率: needs raised in the period and not rejected, and how many of them are closed
    (已办结 or 已回访)."""
    found = _need_sums(session, period, org_id, lambda t: ((), (
        func.sum(case((t.c.status != NeedStatus.REJECTED, t.c.count), else_=0)),
        func.sum(case((t.c.status.in_(NEED_DONE), t.c.count), else_=0)))))
    if found is None:
        found = session.execute(
            select(func.count(Need.id), _count_if(Need.status.in_(NEED_DONE)))
            .where(_needs_in(session, period, org_id), Need.status != NeedStatus.REJECTED)).all()
    needs, closed = (int(v or 0) for v in found[0])
    return [{"needs": needs, "closed": closed, "rate": ratio(closed, needs)}]


def need_on_time_rate(session, period: Period, org_id=None):
    """按期办结率: of the closed needs raised in the period, those closed by their deadline."""
    found = _need_sums(session, period, org_id, lambda t: ((), (
        func.sum(case((t.c.status.in_(NEED_DONE), t.c.count), else_=0)), func.sum(t.c.on_time))))
    if found is None:
        found = session.execute(
            select(func.count(Need.id), _count_if(Need.closed_on_time))
            .where(_needs_in(session, period, org_id), Need.status.in_(NEED_DONE))).all()
    closed, on_time = (int(v or 0) for v in found[0])
    return [{"closed": closed, "on_time": on_time, "rate": ratio(on_time, closed)}]


def need_mean_time_to_close(session, period: Period, org_id=None):
    """Mean time from intake (群众接单) to 办结, in hours, over the closed needs."""
    found = _need_sums(session, period, org_id,
                       lambda t: ((), (func.sum(t.c.timed), func.sum(t.c.seconds))))
    if found is not None:
        closed, total = found[0]
        closed, mean = int(closed or 0), (float(total) / int(closed) if closed else None)
    else:
        seconds = _seconds_between(session, Need.created_on, Need.completed_on)
        closed, mean = session.execute(
            select(func.count(Need.id), func.avg(seconds))
            .where(_needs_in(session, period, org_id), Need.status.in_(NEED_DONE),
                   Need.completed_on.is_not(None))).one()
    return [{"closed": int(closed),
             "hours": None if mean is None else round(float(mean) / 3600, 1)}]


def need_mean_satisfaction(session, period: Period, org_id=None):
    """Mean satisfaction (1–5) of the needs visited back (已回访)."""
    found = _need_sums(session, period, org_id, lambda t: ((), (
        func.sum(t.c.rated), func.sum(t.c.scored), func.sum(t.c.satisfaction))))
    if found is not None:
        rated, scored, total = (int(v or 0) for v in found[0])
        mean = total / scored if scored else None
    else:
        rated, mean = session.execute(
            select(func.count(Need.id), func.avg(Need.satisfaction))
            .where(_needs_in(session, period, org_id), Need.status == NeedStatus.VISITED)).one()
    return [{"rated": int(rated), "mean": None if mean is None else round(float(mean), 2)}]


def _per_month(session, model, period: Period, org_id, steps):
    """Rows of `model` reaching each step in each month of the period, each by the date of
    that step: ``steps`` is ((key, date-time column, condition or None), …). A month is cut in
    the zone's calendar, so each is counted between its own bounds (UTC instants) rather than
    grouped by the stored UTC month: over all data a query per step, on its date's index;
    under a node one query over the node's rows (`_per_month_under`)."""
    months = [(y, m, date(y, m, 1), date(y, m, monthrange(y, m)[1])) for y, m in period.months]
    if org_id is not None:
        return _per_month_under(session, model, period, org_id, steps, months)
    counts = {}
    # A query per step, each within its own column's range: one index range per step (its
    # date first), where one query over all steps had to read every row dated in any of them.
    # Each row's month is the first whose end is after it (within the period: one CASE, not a
    # sum per month).
    for key, column, condition in steps:
        month = case(*((column < clock.day_ends(last), literal_column(str(i)))
                       for i, (_, _, _, last) in enumerate(months)), else_=None)
        # Grouped outside: PostgreSQL would not take the CASE's bound instants in GROUP BY as
        # the same expression as in SELECT.
        dated = (select(month.label("month")).select_from(model)
                 .where(_in_period(column, period), true() if condition is None else condition,
                        _under(session, model, org_id)).subquery())
        stmt = select(dated.c.month, func.count()).group_by(dated.c.month)
        counts[key] = {int(i): int(n) for i, n in session.execute(stmt) if i is not None}
    return [{"month": f"{y}-{m:02d}", **{key: counts[key].get(i, 0) for key, _, _ in steps}}
            for i, (y, m, _, _) in enumerate(months)]


def _per_month_under(session, model, period, org_id, steps, months):
    """`_per_month` under a node: one query over the node's rows (the indexes of the columns
    placing them), a sum per month and step — there each step's date index would walk the
    whole city's rows of the period."""
    sums = [_count_if(and_(column >= clock.day_begins(first), column < clock.day_ends(last),
                           true() if condition is None else condition))
            for _, _, first, last in months for _, column, condition in steps]
    # select_from: the entity the scope's criteria attach to (aggregates alone do not name it).
    stmt = (select(*sums).select_from(model)
            .where(or_(*(_in_period(column, period) for _, column, _ in steps)),
                   _under(session, model, org_id)))
    counts = iter(int(n) for n in session.execute(stmt).one())
    return [{"month": f"{y}-{m:02d}", **{key: next(counts) for key, _, _ in steps}}
            for y, m, _, _ in months]


def needs_per_month(session, period: Period, org_id=None):
    """Needs raised (群众接单) and closed (办结, still 已办结 or 已回访) in each month of the
    period, each by the date of its own step: a need raised in one month and closed in a later
    one — an office's ledger brought in with its past work — counts in both."""
    def by_month(t):
        return (t.c.month,), (func.sum(t.c.count),)

    raised = _need_sums(session, period, org_id, by_month)
    if raised is None:
        return _per_month(session, Need, period, org_id,
                          (("raised", Need.created_on, None),
                           ("closed", Need.completed_on, Need.status.in_(NEED_DONE))))
    raised = dict(raised)
    closed = dict(_need_sums(session, period, org_id, by_month, kind="closed"))
    return [{"month": f"{y}-{m:02d}", "raised": int(raised.get(m) or 0),
             "closed": int(closed.get(m) or 0)} for y, m in period.months]


def needs_by_community(session, period: Period, org_id=None):
    """Per community: needs raised in the period, closed, and overdue now."""
    found = rollups.cells(session, rollups.NeedCommunities.name, org_path(session, org_id))
    if found is not None and rollups.readable(session, rollups.NeedCommunities.name):
        # Raised and closed from the rollup's months (one cell per community and month, where
        # the needs raised in a city's year are 280,000); overdue depends on the clock: live.
        cell, cells = found
        rows = session.execute(
            select(cell.c.community_id, func.sum(cell.c.raised), func.sum(cell.c.closed),
                   func.sum(cell.c.open))
            .where(cells, cell.c.year == period.year,
                   cell.c.month.between(period.start.month, period.end.month))
            .group_by(cell.c.community_id)).all()
        late = _late(session, period, org_id, Need.community_id,
                     {c: int(n or 0) for c, _, _, n in rows})
        return _community_rows(session, [(c, n, done) for c, n, done, _ in rows], late)
    if org_id is not None:
        # Under a node, one pass over the node's needs (the indexes placing them): two would
        # read them twice.
        counted = session.execute(
            select(Need.community_id, func.count(), _count_if(Need.status.in_(NEED_DONE)),
                   _count_if(Need.overdue))
            .select_from(Need).where(_needs_in(session, period, org_id))
            .group_by(Need.community_id)).all()
        return _community_rows(session, [(c, n, done) for c, n, done, _ in counted],
                               {c: late for c, _, _, late in counted})
    # All data: two GROUP BYs, each on its index — the needs raised (community, date,
    # status), and the late among the open ones (`_open_in`), not every need raised tested.
    rows = session.execute(
        select(Need.community_id, func.count(), _count_if(Need.status.in_(NEED_DONE)))
        .select_from(Need).where(_needs_in(session, period, org_id))
        .group_by(Need.community_id)).all()
    return _community_rows(session, rows, _late_by_community(session, period, org_id))


class _unindexed(FunctionElement):
    """A column not to be looked up by an index (SQLite's unary +, a no-op elsewhere): so that
    SQLite's planner takes the range of stored due instants (ix_need_live_due, 4,786 needs of a
    city) rather than the open needs' index by status and date (66,300), whose selectivity it
    cannot tell from the statistics."""

    inherit_cache = True

    def __init__(self, column):
        super().__init__(column)
        self.type = column.type


@compiles(_unindexed)
def _unindexed_default(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(_unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw):
    return f"+{compiler.process(element.clauses, **kw)}"


def _late(session, period, org_id, key, open_: dict) -> dict:
    """The needs raised in the period under the node and late now, by `key` (a need's column:
    its community, status or category), from `open_` — those open at a step by the same key,
    summed from the needs rollup's cells — less those not yet late, counted live (the clock
    decides): of a city's year, 66,300 needs open and 61,514 late, whose test of their step's
    dates read every open need, where the 4,786 not late are one range of the index of the
    stored due instants (ix_need_live_due: those due from now on, and those without a due
    time), each tested by `Need.overdue` itself. A need written since the cells were applied
    (with a job queue, within the minute the board states) can put a key's count one off:
    never below none."""
    due_from = clock.utcnow()
    created = _unindexed(Need.created_on)
    not_late: dict = {}
    for due in (Need.due_rank == 1, and_(Need.due_rank == 0, Need.step_due_on >= due_from)):
        # Counted here, not grouped in SQL: SQLite would walk the key's index for its order.
        for (k,) in session.execute(
                select(key).select_from(Need)
                .where(due, _unindexed(Need.status).in_(OPEN_STEPS), created >= period.begins,
                       created < period.ends, _under(session, Need, org_id), ~Need.overdue)):
            not_late[k] = not_late.get(k, 0) + 1
    return {k: max(n - not_late.get(k, 0), 0) for k, n in open_.items()}


def _late_by_community(session, period, org_id) -> dict[int, int]:
    """The needs raised in the period under the node and late now, per community."""
    late: dict[int, int] = {}
    # By status too: the open needs' index leads with it (grouped by community alone, the
    # planner walked the community index and read every need's row for its step's columns).
    for _status, community_id, n in session.execute(
            select(Need.status, Need.community_id, _count_if(Need.overdue)).select_from(Need)
            .where(_open_in(session, period, org_id))
            .group_by(Need.status, Need.community_id)):
        late[community_id] = late.get(community_id, 0) + int(n)
    return late


def _community_rows(session, counted, late):
    names = _community_names(session, [c for c, _, _ in counted])
    result = [{"community_id": c, "community": names.get(c, f"#{c}"), "needs": int(n),
               "closed": int(done), "overdue": int(late.get(c, 0))} for c, n, done in counted]
    return sorted(result, key=lambda r: (r["community"], r["community_id"]))


def members_by_grid(session, period: Period, org_id=None):
    """Per grid (网格党支部): the members whose 所在网格 lies in it, its 红色网格员 and 党员中心户
    (as they stand now: the period does not apply)."""
    # Counted per 所在网格 node in SQL (one index of the live members: ix_member_live_grid),
    # then credited to the grids among that node's ancestors by its path. Joining members to
    # grids on `path LIKE grid.path || '%'` compared every member with every grid (9 of the city
    # dashboard's 10 minutes on SQLite); joining each member to its node, 600,000 look-ups.
    # Where the viewer's scope and the node are put on their keys, the counts per 所在网格 come
    # from the rollup's cells (one per building group, not a city's members), summed in SQL
    # per node crediting the same grids — a grid itself, else the group's parent, whose path
    # holds the same grids (a city's 16,200 building groups are its 5,400 grids') — each with
    # its path (the tree's table: a soft-deleted node's path too, as below).
    org = Organization.__table__
    found = rollups.cells(session, rollups.MemberGroups.name, org_path(session, org_id))
    if found is not None and rollups.readable(session, rollups.MemberGroups.name):
        cell, cells = found
        group, credited = org.alias("group_node"), org.alias("credited")
        placed = (select(case((group.c.type == "grid", group.c.id), else_=group.c.parent_id)
                         .label("node_id"), cell.c.members, cell.c.red, cell.c.household)
                  .select_from(cell).join(group, group.c.id == cell.c.group_id).where(cells)
                  .subquery())
        # Grouped outside: PostgreSQL takes no bound constant (the CASE's) in GROUP BY as the
        # SELECT's.
        summed = (select(placed.c.node_id, func.sum(placed.c.members).label("members"),
                         func.sum(placed.c.red).label("red"),
                         func.sum(placed.c.household).label("household"))
                  .group_by(placed.c.node_id).subquery())
        per_group = session.execute(
            select(credited.c.path, summed.c.members, summed.c.red, summed.c.household)
            .join_from(summed, credited, credited.c.id == summed.c.node_id)).all()
    else:
        counted = session.execute(
            select(Member.group_id, func.count(Member.id), _count_if(Member.is_red_grid_worker),
                   _count_if(Member.is_household_center))
            .where(Member.group_id.is_not(None), _under(session, Member, org_id))
            .group_by(Member.group_id)).all()
        ids = sorted(row[0] for row in counted)
        paths: dict[int, str] = {}
        for start in range(0, len(ids), 900):
            paths.update(session.execute(select(org.c.id, org.c.path).where(
                org.c.id.in_(ids[start:start + 900]))).all())
        per_group = [(paths[g], n, red, household) for g, n, red, household in counted
                     if g in paths]
    if not per_group:
        return []
    # The tree is every role's directory: only live grids.
    grids = dict(session.execute(select(Organization.id, Organization.name).where(
        Organization.type == "grid", Organization.deleted_on.is_(None))).all())
    by_segment = {str(g): g for g in grids}  # a path's segments, as text: no int() per segment
    counts: dict[int, list[int]] = {}
    for path, n, red, household in per_group:
        n, red, household = int(n), int(red or 0), int(household or 0)
        for part in path.split("/"):  # a node is on its path once
            node = by_segment.get(part)
            if node is not None:
                total = counts.setdefault(node, [0, 0, 0])
                total[0], total[1], total[2] = total[0] + n, total[1] + red, total[2] + household
    rows = [{"grid_id": g, "grid": grids[g], "members": n, "red": red, "household": household}
            for g, (n, red, household) in counts.items()]
    return sorted(rows, key=lambda r: (r["grid"], r["grid_id"]))


def overdue_by_step(session, period: Period, org_id=None):
    """逾期按环节: needs raised in the period and late now, by the step they wait at
    (受理, 派单, 接单, 办理) — the status that waits for it tells the step."""
    found = _need_sums(session, period, org_id, lambda t: ((t.c.status,), (func.sum(t.c.count),)))
    if found is not None:
        counts = _late(session, period, org_id, Need.status,
                       {s: int(n or 0) for s, n in found if s in OPEN_STEPS})
    else:
        counts = dict(session.execute(
            select(Need.status, _count_if(Need.overdue))
            .where(_open_in(session, period, org_id)).group_by(Need.status)).all())
    return [{"step": step, "status": status, "overdue": int(counts.get(status, 0))}
            for status, step in NEED_STEPS]


def overdue_by_category(session, period: Period, org_id=None):
    """逾期按类别: needs raised in the period and late now, by category (most first)."""
    found = _need_sums(session, period, org_id, lambda t: ((t.c.category_id,), (
        func.sum(case((t.c.status.in_(OPEN_STEPS), t.c.count), else_=0)),)))
    if found is not None:
        late = _late(session, period, org_id, Need.category_id,
                     {c: int(n or 0) for c, n in found})
    else:
        late = dict(session.execute(
            select(Need.category_id, _count_if(Need.overdue)).select_from(Need)
            .where(_open_in(session, period, org_id)).group_by(Need.category_id)).all())
    counted = [(c, n) for c, n in late.items() if n]
    labels = _category_labels(session, [c for c, _ in counted])
    rows = [{"category_id": c, "category": labels.get(c) or "—", "overdue": int(n)}
            for c, n in counted]
    return sorted(rows, key=lambda r: (-r["overdue"], r["category"]))


OVERDUE_LIST_LIMIT = 20


def overdue_needs(session, period: Period, org_id=None, limit: int = OVERDUE_LIST_LIMIT):
    """The overdue list: needs raised in the period, late at their current step, those with
    the earliest deadline first, then the earliest filed (its count is `needs_by_community`'s
    overdue column)."""
    order = (Need.deadline.is_(None), Need.deadline, Need.created_on, Need.id)
    # The first ids on the open needs' index alone, then their rows: ordering the late needs
    # with their titles fetched every late need's row.
    first = session.execute(select(Need.id).where(_overdue_in(session, period, org_id))
                            .order_by(*order).limit(limit)).scalars().all()
    stmt = (select(Need.id, Need.title, Need.community_id, Need.status, Need.urgency,
                   Need.deadline, Need.assigned_unit_id,
                   Need.overdue_step_sql().label("step"))
            .where(Need.id.in_(first)).order_by(*order))
    rows = session.execute(stmt).all() if first else []
    names = _community_names(session, [r.community_id for r in rows])
    units = dict(session.execute(select(Unit.id, Unit.name).where(
        Unit.id.in_([r.assigned_unit_id for r in rows if r.assigned_unit_id]))).all()) \
        if rows else {}
    return [{"id": r.id, "title": r.title, "community": names.get(r.community_id, ""),
             "status": r.status, "step": r.step, "urgency": r.urgency, "deadline": r.deadline,
             "unit": units.get(r.assigned_unit_id, "")} for r in rows]


def need_match_rate(session, period: Period, org_id=None):
    """匹配率: needs raised in the period and not rejected, and those matched (a service item
    linked, or a resource its unit took on) — summed from the needs rollup's cells where the
    viewer's scope is on their keys (app/rollups.py Needs), else counted."""
    found = _need_sums(session, period, org_id, lambda t: ((), (
        func.sum(case((t.c.status != NeedStatus.REJECTED, t.c.count), else_=0)),
        func.sum(case((t.c.status != NeedStatus.REJECTED, t.c.matched), else_=0)))))
    taken = and_(_needs_in(session, period, org_id), Need.status != NeedStatus.REJECTED)
    if found is not None:
        needs, matched = (int(v or 0) for v in found[0])
    elif org_id is not None:
        # Under a node, one pass over the node's needs (two would read them twice).
        needs, matched = (int(v) for v in session.execute(
            select(func.count(), _count_if(Need.matched)).select_from(Need).where(taken)).one())
    else:
        # All data: the needs on the index of their date and status, the matched ones from
        # the links (few) to their needs — one pass tested every need raised against them.
        needs, matched = (int(session.execute(select(func.count()).select_from(Need)
                                              .where(*where)).scalar())
                          for where in ((taken,), (taken, Need.matched)))
    return [{"needs": needs, "matched": matched, "rate": ratio(matched, needs)}]


WISH_CLAIMED = rollups.WISH_CLAIMED


def _wish_sums(session, period: Period, org_id, *sums):
    """The wishes rollup's `sums` per month of the period under the node, of the node cells or
    the community cells the viewer reads (app/rollups.py Wishes) — or None where the viewer's
    scope is not on the cells' keys (a liaison, a member: the wishes published in their
    community and those they claimed; a grid): the raw query then."""
    found = rollups.cells(session, rollups.Wishes.name, org_path(session, org_id))
    if found is None or not rollups.readable(session, rollups.Wishes.name):
        return None
    cell, cells = found
    stmt = (select(cell.c.month, *[func.sum(cell.c[name]) for name in sums])
            .where(cells, cell.c.year == period.year,
                   cell.c.month.between(period.start.month, period.end.month))
            .group_by(cell.c.month))
    return {int(m): [int(n or 0) for n in counts] for m, *counts in session.execute(stmt)}


def wish_claim_rate(session, period: Period, org_id=None):
    """认领率: micro-wishes posted in the period and published, and those claimed."""
    found = _wish_sums(session, period, org_id, "published", "published_claimed")
    if found is not None:
        published, claimed = (sum(sums[i] for sums in found.values()) for i in (0, 1))
    else:
        stmt = (select(func.count(MicroWish.id), _count_if(MicroWish.status.in_(WISH_CLAIMED)))
                .where(_in_period(MicroWish.created_on, period),
                       MicroWish.status.in_(WISH_PUBLISHED), _under(session, MicroWish, org_id)))
        published, claimed = (int(v) for v in session.execute(stmt).one())
    return [{"published": published, "claimed": claimed, "rate": ratio(claimed, published)}]


def wishes_per_month(session, period: Period, org_id=None):
    """Micro-wishes posted, claimed and fulfilled in each month of the period (by the date of
    each step)."""
    steps = ("posted", "claimed", "fulfilled")
    found = _wish_sums(session, period, org_id, *steps)
    if found is not None:
        return [{"month": f"{y}-{m:02d}", **dict(zip(steps, found.get(m, (0, 0, 0)), strict=True))}
                for y, m in period.months]
    return _per_month(session, MicroWish, period, org_id,
                      (("posted", MicroWish.created_on, None), ("claimed", MicroWish.claimed_on, None),
                       ("fulfilled", MicroWish.fulfilled_on, None)))


# --- co-building: registration, points, stars, service hours --------------------------------------

def registration_rates(session, period: Period, org_id=None):
    """报到率 per community, at the end of the period: units in the register and those
    registered (单位报到 已报到), in-service members living there and registrations confirmed
    there (党员报到 已报到) — summed from the rollup's counts where the viewer's scope and the
    node are put on their keys (app/rollups.py), else counted from the rows."""
    found = rollups.cells(session, rollups.Registrations.name, org_path(session, org_id))
    if found is not None and rollups.readable(session, rollups.Registrations.name):
        count, cells = found
        # A unit's and a member's counts are as they stand (year 0); registrations up to the
        # period's end.
        until = or_(count.c.year < period.end.year,
                    and_(count.c.year == period.end.year, count.c.month <= period.end.month))
        kinds = {"unit": "units", "unit_reg": "registered_units", "member": "members",
                 "member_reg": "registered_members"}
        found = session.execute(
            select(count.c.community_id, count.c.kind, func.sum(count.c.count))
            .where(cells, until).group_by(count.c.community_id, count.c.kind)).all()
        counted = [(key, [(c, n) for c, k, n in found if k == kind])
                   for kind, key in kinds.items()]
    else:
        counted = [(key, session.execute(stmt).all())
                   for key, stmt in _registration_counts(session, period, org_id)]
    merged: dict[int, dict[str, int]] = {}
    for key, found in counted:
        for community_id, n in found:
            merged.setdefault(community_id, {})[key] = int(n)
    names = _community_names(session, merged)
    rows = []
    for community_id, c in merged.items():
        row = {"community_id": community_id,
               "community": names.get(community_id, f"#{community_id}")}
        row.update({k: c.get(k, 0) for k in ("units", "registered_units", "members",
                                              "registered_members")})
        row["unit_rate"] = ratio(row["registered_units"], row["units"])
        row["member_rate"] = ratio(row["registered_members"], row["members"])
        rows.append(row)
    return sorted(rows, key=lambda r: (r["community"], r["community_id"]))


def _registration_counts(session, period, org_id):
    """The raw queries of `registration_rates`: (key, per-community count statement)."""
    # The unit directory is readable by everyone: count the units one answers for.
    units = (select(Unit.community_id, func.count(Unit.id))
             .where(Unit.status == UnitStatus.REGISTERED, owner_clause(Unit, current_principal()),
                    _under(session, Unit, org_id)).group_by(Unit.community_id))
    unit_regs = (select(UnitRegistration.community_id, func.count(UnitRegistration.id))
                 .where(UnitRegistration.status == UnitRegistrationStatus.REGISTERED,
                        UnitRegistration.registered_on <= period.end,
                        _under(session, UnitRegistration, org_id))
                 .group_by(UnitRegistration.community_id))
    members = (select(Member.community_id, func.count(Member.id))
               .where(Member.category == "在职", Member.status == MemberStatus.ACTIVE,
                      _under(session, Member, org_id)).group_by(Member.community_id))
    member_regs = (select(MemberRegistration.community_id, func.count(MemberRegistration.id))
                   .where(MemberRegistration.status == MemberRegistrationStatus.REGISTERED,
                          MemberRegistration.registered_on <= period.end,
                          _under(session, MemberRegistration, org_id))
                   .group_by(MemberRegistration.community_id))
    return (("units", units), ("registered_units", unit_regs), ("members", members),
            ("registered_members", member_regs))


def agreement_three_ones(session, period: Period, org_id=None):
    """Per community, the agreements in force during the period's year and how many units met
    each of the 三个一 that year and all three (services.cobuild.AgreementOnes) — one GROUP BY."""
    start, end = date(period.year, 1, 1), date(period.year, 12, 31)
    under = _under(session, Agreement, org_id)
    # Who sees all reads the units' counts from their rollup (a city's year of meetings,
    # attendances and needs was 0.8 s on SQLite); under a node, only its agreements' units
    # are counted (a community's page reads a few).
    rolled = rollups.sees_all() and rollups.readable(session, rollups.UnitOnes.name)
    ones = AgreementOnes(period.year, rolled=rolled, units=None if org_id is None or rolled
                         else select(Agreement.unit_id).where(under))
    counted = session.execute(ones.select(
        Agreement.community_id, func.count(Agreement.id), _count_if(ones.meetings_met),
        _count_if(ones.needs_met), _count_if(ones.all_met))
        .where(Agreement.status == AgreementStatus.SIGNED, Agreement.valid_from <= end,
               Agreement.valid_to >= start, under)
        .group_by(Agreement.community_id)).all()
    names = _community_names(session, {row[0] for row in counted})
    rows = [{"community_id": cid, "community": names.get(cid, f"#{cid}"), "agreements": int(n),
             "meetings_met": int(meetings), "needs_met": int(needs), "all_met": int(met),
             "rate": ratio(int(met), int(n))} for cid, n, meetings, needs, met in counted]
    return sorted(rows, key=lambda r: (r["community"], r["community_id"]))


def service_month(period: Period) -> tuple[date, date]:
    """The month whose monthly service a period's figure shows: the period's last month that
    has come (this month so far, in the current period)."""
    last = min(period.end, clock.today())
    return last.replace(day=1), last


def _registered(session, org_id, *columns):
    """`columns` of the registered (已报到) members under the node, with their member rows:
    what both monthly-service figures read."""
    return (select(*columns).select_from(MemberRegistration)
            .join(Member, Member.id == MemberRegistration.member_id)
            .where(MemberRegistration.status == MemberRegistrationStatus.REGISTERED,
                   _under(session, MemberRegistration, org_id)))


def _monthly_service_counts(session, period: Period, org_id, by_pair: bool):
    """(registered, served) per (community, work unit) — or over all of them (`by_pair`
    False): summed from the rollup's cells where the viewer's scope and the node are put on
    their keys (app/rollups.py MonthlyService), else counted from the registrations."""
    first, last = service_month(period)
    found = rollups.cells(session, rollups.MonthlyService.name, org_path(session, org_id))
    if found is not None and rollups.readable(session, rollups.MonthlyService.name):
        # The rollup's standing counts (year 0) and its month's; a service record cannot be
        # dated after today (models.cobuild), so the month's so far is the whole month's.
        cell, cells = found
        standing = cell.c.year == 0
        keys = (cell.c.community_id, cell.c.unit_id) if by_pair else ()
        stmt = (select(*keys, func.sum(case((standing, cell.c.members), else_=0)),
                       func.sum(case((standing, 0), else_=cell.c.members)))
                .where(cells, or_(and_(standing, cell.c.month == 0),
                                  and_(cell.c.year == first.year, cell.c.month == first.month))))
        if not by_pair:
            return [tuple(int(v or 0) for v in session.execute(stmt).one())]
        return [(c, u or None, n, k) for c, u, n, k in session.execute(stmt.group_by(*keys)) if n]
    served = served_between(MemberRegistration.member_id, first, last)
    keys = (MemberRegistration.community_id, Member.work_unit_id) if by_pair else ()
    stmt = _registered(session, org_id, *keys, func.count(MemberRegistration.id),
                       _count_if(served))
    if not by_pair:
        return [tuple(int(v or 0) for v in session.execute(stmt).one())]
    return session.execute(stmt.group_by(*keys)).all()


def monthly_service(session, period: Period, org_id=None):
    """Registered (已报到) members per community and work unit, and how many have served in the
    month (service_month) — a registered member serves once a month (双报到's 三个一)."""
    first, _ = service_month(period)
    counted = _monthly_service_counts(session, period, org_id, by_pair=True)
    names = _community_names(session, {c for c, _, _, _ in counted})
    units = dict(session.execute(select(Unit.id, Unit.name).where(
        Unit.id.in_({u for _, u, _, _ in counted if u}))).all()) if counted else {}
    month, none = f"{first:%Y-%m}", "（无工作单位）"
    rows = [{"month": month, "community_id": c, "community": names.get(c, f"#{c}"),
             "unit_id": u, "unit": units.get(u, none) if u else none,
             "registered": int(n), "served": int(k), "unserved": int(n) - int(k)}
            for c, u, n, k in counted]
    return sorted(rows, key=lambda r: (r["community"], -r["unserved"], r["unit"]))


def monthly_service_totals(session, period: Period, org_id=None):
    """`monthly_service` summed: one row of its month's registered, served and unserved — what
    the board's card shows. The figure's rows are every (community, work unit) under the node:
    a city's 329,141 for all data, whose dicts alone cost the board seconds; its CSV and the
    monthly report list them."""
    first, _ = service_month(period)
    registered, served = _monthly_service_counts(session, period, org_id, by_pair=False)[0]
    return [{"month": f"{first:%Y-%m}", "registered": registered, "served": served,
             "unserved": registered - served}]


UNSERVED_LIST_LIMIT = 200


def members_not_served(session, period: Period, org_id=None, limit: int = UNSERVED_LIST_LIMIT):
    """Who did not serve: registered (已报到) members without a service record in the month of
    `monthly_service`, by community, work unit and name (its counts are that figure's)."""
    first, last = service_month(period)
    stmt = (_registered(session, org_id, Member.name, MemberRegistration.community_id,
                        Member.work_unit_id)
            .where(~served_between(MemberRegistration.member_id, first, last))
            .order_by(MemberRegistration.community_id, Member.work_unit_id, Member.name,
                      Member.id)
            .limit(limit))
    rows = session.execute(stmt).all()
    names = _community_names(session, {c for _, c, _ in rows})
    units = dict(session.execute(select(Unit.id, Unit.name).where(
        Unit.id.in_({u for _, _, u in rows if u}))).all()) if rows else {}
    return [{"month": f"{first:%Y-%m}", "name": name, "community": names.get(c, f"#{c}"),
             "unit": units.get(u, "（无工作单位）") if u else "（无工作单位）"}
            for name, c, u in rows]


LEADERBOARD_SIZE = 10


def _leaderboard(session, period, org_id, subject: str, limit: int):
    if rollups.whole_ledger(org_path(session, org_id)) \
            and rollups.readable(session, f"points_{subject}"):
        # The whole ledger's ranking: the first balances of the period's index (app/rollups.py).
        balance = PointBalance.__table__
        code = str(period.year) if period.kind == "year" else period.quarters[0]
        stmt = (select(balance.c.subject_id, balance.c.points, balance.c.entries)
                .where(balance.c.subject_type == subject, balance.c.period == code)
                .order_by(balance.c.points.desc(), balance.c.subject_id).limit(limit))
    else:
        column = PointEntry.member_id if subject == "member" else PointEntry.unit_id
        total = func.sum(PointEntry.delta)
        stmt = (select(column, total, func.count(PointEntry.id))
                .where(PointEntry.subject_type == subject, PointEntry.period.in_(period.quarters),
                       _ledger_under(session, org_id))
                .group_by(column).order_by(total.desc(), column).limit(limit))
    rows = session.execute(stmt).all()
    model = Member if subject == "member" else Unit
    # Names apart: the ledger's scope anchors are correlated subqueries on the subject's table.
    names = dict(session.execute(select(model.id, model.name).where(
        model.id.in_([r[0] for r in rows]))).all()) if rows else {}
    return [{"id": i, "name": names.get(i) or f"#{i}", "points": float(points or 0),
             "entries": int(n)} for i, points, n in rows]


def member_points_leaderboard(session, period: Period, org_id=None, limit=LEADERBOARD_SIZE):
    """积分排行 of members: the ledger's net points of the period's quarters."""
    return _leaderboard(session, period, org_id, "member", limit)


def unit_points_leaderboard(session, period: Period, org_id=None, limit=LEADERBOARD_SIZE):
    """积分排行 of units: the ledger's net points of the period's quarters."""
    return _leaderboard(session, period, org_id, "unit", limit)


def star_distribution(session, period: Period, org_id=None):
    """星级分布 per community: the published ratings (已公示, the stars awarded) by subject type
    and stars (None: not rated) — of the latest rating period not after the period's own, of
    its kind: a year shows the latest year's award (一年一授星), a quarter or a month the latest
    quarter's rating. A year is rated once it is over, so this year's dashboard shows last
    year's awards rather than nothing. Each row names the rating period it shows."""
    published = and_(StarRating.status == RatingStatus.PUBLISHED,
                     _under(session, StarRating, org_id))
    if period.kind == "year":
        kind, latest = "year", str(period.year)
    else:
        kind, latest = "quarter", period.quarters[-1]
    # "2025Q4" < "2026" < "2026Q1" as text, and each kind alone compares as its periods do.
    shown = session.execute(select(func.max(StarRating.period)).where(
        published, StarRating.period_kind == kind, StarRating.period <= latest)).scalar()
    if shown is None:
        return []
    # The subject's community, per rating first (a subquery), then counted.
    community = func.coalesce(
        select(Unit.community_id).where(Unit.id == StarRating.unit_id)
        .correlate_except(Unit).scalar_subquery(),
        select(Member.community_id).where(Member.id == StarRating.member_id)
        .correlate_except(Member).scalar_subquery())
    rated = (select(community.label("community_id"), StarRating.subject_type, StarRating.stars)
             .where(StarRating.period == shown, published).subquery())
    stmt = (select(rated.c.community_id, rated.c.subject_type, rated.c.stars, func.count())
            .group_by(rated.c.community_id, rated.c.subject_type, rated.c.stars))
    rows = session.execute(stmt).all()
    names = _community_names(session, [r[0] for r in rows])
    result = [{"period": shown, "community_id": c, "community": names.get(c, "—"),
               "subject_type": subject, "stars": stars, "count": int(n)}
              for c, subject, stars, n in rows]
    return sorted(result, key=lambda r: (r["community"], r["subject_type"], r["stars"] or 0))


def service_hours_per_month(session, period: Period, org_id=None):
    """Certified service hours (and records) per month of service: summed from the rollup's
    cells where the viewer's scope and the node are put on their keys (app/rollups.py), else
    from the records."""
    found = rollups.cells(session, rollups.ServiceHours.name, org_path(session, org_id))
    if found is not None and rollups.readable(session, rollups.ServiceHours.name):
        cell, cells = found
        stmt = (select(cell.c.year, cell.c.month, func.sum(cell.c.hours), func.sum(cell.c.records))
                .where(cells, cell.c.year == period.year,
                       cell.c.month.between(period.start.month, period.end.month))
                .group_by(cell.c.year, cell.c.month))
    else:
        year, month = _month_keys(ServiceRecord.served_on)
        stmt = (select(year, month, func.sum(ServiceRecord.hours), func.count(ServiceRecord.id))
                .where(ServiceRecord.status == RecordStatus.CERTIFIED,
                       ServiceRecord.served_on.between(period.start, period.end),
                       _under(session, ServiceRecord, org_id))
                .group_by(year, month))
    found = {(int(y), int(m)): (float(h or 0), int(n)) for y, m, h, n in session.execute(stmt)}
    return [{"month": f"{y}-{m:02d}", "hours": found.get((y, m), (0.0, 0))[0],
             "records": found.get((y, m), (0.0, 0))[1]} for y, m in period.months]


# --- joint meetings: the meetings service's figures --------------------------------------------

def meetings_held_vs_planned(session, period: Period, org_id=None):
    due = period.due()  # a meeting planned for next week is not yet missed
    return meeting_figures.meetings_held_vs_planned(session, due.start, due.end, org_id)


def meeting_attendance_rate(session, period: Period, org_id=None):
    return meeting_figures.attendance_rate(session, period.start, period.end, org_id)


def leader_compliance(session, period: Period, org_id=None):
    return meeting_figures.leader_compliance(session, period.start, period.end, org_id)


def resolutions_on_time(session, period: Period, org_id=None):
    return meeting_figures.resolution_figures(session, period.start, period.end, org_id)


def points_paid(session, period: Period, org_id=None):
    """积分发放: the ledger's entries written in the period, by subject (党员/驻区单位) — paid,
    reversed and net. By the entry's time, not its quarter: a month's report counts that month.
    The whole ledger's (who sees all, no node chosen) is summed from the rollup's months."""
    if rollups.whole_ledger(org_path(session, org_id)) \
            and rollups.readable(session, rollups.PointsPaid.name):
        cell = PointsPaidCell.__table__
        stmt = (select(cell.c.subject_type, func.sum(cell.c.entries),
                       func.sum(case((cell.c.kind == "pay", cell.c.points), else_=0)),
                       func.sum(case((cell.c.kind == "reverse", cell.c.points), else_=0)))
                .where(cell.c.year == period.year,
                       cell.c.month.between(period.start.month, period.end.month))
                .group_by(cell.c.subject_type))
    else:
        paid = func.coalesce(func.sum(case((PointEntry.kind == "pay", PointEntry.delta),
                                           else_=0)), 0)
        reversed_ = func.coalesce(func.sum(case((PointEntry.kind == "reverse", PointEntry.delta),
                                                else_=0)), 0)
        stmt = (select(PointEntry.subject_type, func.count(PointEntry.id), paid, reversed_)
                .where(_in_period(PointEntry.created_on, period),
                       _ledger_under(session, org_id))
                .group_by(PointEntry.subject_type))
    found = {kind: (int(n), float(p or 0), float(r or 0)) for kind, n, p, r in session.execute(stmt)}
    return [{"subject": label, "entries": found.get(kind, (0, 0.0, 0.0))[0],
             "paid": found.get(kind, (0, 0.0, 0.0))[1],
             "reversed": found.get(kind, (0, 0.0, 0.0))[2],
             "net": round(sum(found.get(kind, (0, 0.0, 0.0))[1:]), 2)}
            for kind, label in (("member", "党员"), ("unit", "驻区单位"))]


def agreement_states(session, period: Period, org_id=None):
    """Per community: agreements signed in the period; in force at its end and ending within
    the warning days after it (即将到期); ended within it (到期失效). As of the period's end, so
    a past month's figures do not move with today."""
    warn = period.end + timedelta(days=EXPIRY_WARNING_DAYS)
    signed = and_(Agreement.status != AgreementStatus.DRAFT,
                  Agreement.signed_on.between(period.start, period.end))
    in_force = and_(Agreement.status == AgreementStatus.SIGNED, Agreement.valid_from <= period.end)
    expiring = and_(in_force, Agreement.valid_to > period.end, Agreement.valid_to <= warn)
    lapsed = and_(in_force, Agreement.valid_to.between(period.start, period.end))
    stmt = (select(Agreement.community_id, _count_if(signed), _count_if(expiring), _count_if(lapsed))
            .where(or_(signed, expiring, lapsed), _under(session, Agreement, org_id))
            .group_by(Agreement.community_id))
    rows = session.execute(stmt).all()
    names = _community_names(session, [r[0] for r in rows])
    result = [{"community_id": c, "community": names.get(c, f"#{c}"), "signed": int(s),
               "expiring": int(e), "lapsed": int(ended)} for c, s, e, ended in rows]
    return sorted(result, key=lambda r: (r["community"], r["community_id"]))


# --- the figures the page shows, with the columns of their CSV ----------------------------------


@dataclass(frozen=True)
class Figure:
    """A figure once: its function, title and the columns of its CSV — the dashboard's page
    and CSV and the monthly report (app/services/work_report.py) all read it from here. The
    labels are msgids (N_): the report's .docx prints them translated."""

    name: str
    title: str
    function: Callable
    columns: dict[str, str]


RATE = "rate"
FIGURES = {f.name: f for f in [
    Figure("need_funnel", N_("需求办理漏斗"), need_funnel,
           {"stage": N_("环节"), "count": N_("需求数"), "statuses": N_("包含状态")}),
    Figure("need_completion_rate", N_("需求办结率"), need_completion_rate,
           {"needs": N_("受理需求数"), "closed": N_("已办结"), RATE: N_("办结率")}),
    Figure("need_on_time_rate", N_("按期办结率"), need_on_time_rate,
           {"closed": N_("已办结"), "on_time": N_("按期办结"), RATE: N_("按期办结率")}),
    Figure("need_mean_time_to_close", N_("平均办结时长"), need_mean_time_to_close,
           {"closed": N_("已办结"), "hours": N_("平均办结时长（小时）")}),
    Figure("need_mean_satisfaction", N_("平均满意度"), need_mean_satisfaction,
           {"rated": N_("已回访"), "mean": N_("平均满意度")}),
    Figure("needs_per_month", N_("需求月度情况"), needs_per_month,
           {"month": N_("月份"), "raised": N_("登记"), "closed": N_("办结")}),
    Figure("needs_by_community", N_("各社区需求办理"), needs_by_community,
           {"community": N_("社区"), "needs": N_("需求数"), "closed": N_("已办结"), "overdue": N_("逾期")}),
    Figure("overdue_by_step", N_("逾期需求（按环节）"), overdue_by_step,
           {"step": N_("环节"), "status": N_("当前状态"), "overdue": N_("逾期")}),
    Figure("overdue_by_category", N_("逾期需求（按类别）"), overdue_by_category,
           {"category": N_("类别"), "overdue": N_("逾期")}),
    Figure("overdue_needs", N_("逾期需求"), overdue_needs,
           {"id": N_("编号"), "title": N_("需求标题"), "community": N_("社区"), "status": N_("状态"),
            "step": N_("逾期环节"), "urgency": N_("紧急程度"), "deadline": N_("办理时限"),
            "unit": N_("派单单位")}),
    Figure("need_match_rate", N_("需求匹配率"), need_match_rate,
           {"needs": N_("受理需求数"), "matched": N_("已匹配服务项目或资源"), RATE: N_("匹配率")}),
    Figure("needs_by_category_and_status", N_("需求清单（类别×状态）"), needs_by_category_and_status,
           {"category": N_("类别"), "status": N_("状态"), "count": N_("数量")}),
    Figure("resources_by_category_and_status", N_("资源清单（类别×状态）"),
           resources_by_category_and_status, {"category": N_("类别"), "status": N_("状态"), "count": N_("数量")}),
    Figure("service_items_by_category_and_status", N_("服务清单（类别×状态）"),
           service_items_by_category_and_status,
           {"category": N_("类别"), "status": N_("状态"), "count": N_("数量")}),
    Figure("wish_claim_rate", N_("微心愿认领率"), wish_claim_rate,
           {"published": N_("已发布"), "claimed": N_("已认领"), RATE: N_("认领率")}),
    Figure("wishes_per_month", N_("微心愿月度情况"), wishes_per_month,
           {"month": N_("月份"), "posted": N_("发布"), "claimed": N_("认领"), "fulfilled": N_("实现")}),
    Figure("registration_rates", N_("双报到报到率"), registration_rates,
           {"community": N_("社区"), "units": N_("在册单位"), "registered_units": N_("已报到单位"),
            "unit_rate": N_("单位报到率"), "members": N_("在职党员"), "registered_members": N_("已报到党员"),
            "member_rate": N_("党员报到率")}),
    Figure("agreement_three_ones", N_("协议“三个一”"), agreement_three_ones,
           {"community": N_("社区"), "agreements": N_("有效协议"), "meetings_met": N_("每季参会"),
            "needs_met": N_("办结需求达标"), "all_met": N_("三个一均达标"), RATE: N_("达标率")}),
    Figure("monthly_service", N_("已报到党员本月服务"), monthly_service,
           {"month": N_("月份"), "community": N_("社区"), "unit": N_("工作单位"), "registered": N_("已报到党员"),
            "served": N_("本月已服务"), "unserved": N_("本月未服务")}),
    Figure("members_not_served", N_("本月未服务的已报到党员"), members_not_served,
           {"month": N_("月份"), "name": N_("党员"), "community": N_("社区"), "unit": N_("工作单位")}),
    Figure("members_by_grid", N_("各网格党员"), members_by_grid,
           {"grid": N_("网格"), "members": N_("党员"), "red": N_("红色网格员"), "household": N_("党员中心户")}),
    Figure("member_points_leaderboard", N_("党员积分排行"), member_points_leaderboard,
           {"name": N_("党员"), "points": N_("积分"), "entries": N_("积分流水条数")}),
    Figure("unit_points_leaderboard", N_("单位积分排行"), unit_points_leaderboard,
           {"name": N_("驻区单位"), "points": N_("积分"), "entries": N_("积分流水条数")}),
    Figure("star_distribution", N_("星级分布"), star_distribution,
           {"period": N_("评定期间"), "community": N_("社区"), "subject_type": N_("对象类型"), "stars": N_("星级"), "count": N_("数量")}),
    Figure("service_hours_per_month", N_("服务时长"), service_hours_per_month,
           {"month": N_("月份"), "hours": N_("服务时长（小时）"), "records": N_("服务记录数")}),
    Figure("meetings_held_vs_planned", N_("会议召开情况"), meetings_held_vs_planned,
           {"quarter": N_("季度"), "type": N_("会议类型"), "planned": N_("计划"), "held": N_("已召开"),
            "cancelled": N_("已取消"), RATE: N_("召开率")}),
    Figure("meeting_attendance_rate", N_("参会率"), meeting_attendance_rate,
           {"type": N_("会议类型"), "expected": N_("应到单位"), "present": N_("实到单位"), RATE: N_("参会率")}),
    Figure("leader_compliance", N_("参会职级"), leader_compliance,
           {"type": N_("会议类型"), "present": N_("出席单位"), "compliant": N_("职级达标"),
            "non_compliant": N_("职级不达标"), RATE: N_("职级达标率")}),
    Figure("points_paid", N_("积分发放"), points_paid,
           {"subject": N_("对象"), "entries": N_("积分流水条数"), "paid": N_("记分"), "reversed": N_("冲正"),
            "net": N_("净发放")}),
    Figure("agreement_states", N_("协议签订与到期"), agreement_states,
           {"community": N_("社区"), "signed": N_("本期签订"), "expiring": N_("即将到期"), "lapsed": N_("本期到期")}),
    Figure("resolutions_on_time", N_("议定事项办理"), resolutions_on_time,
           {"quarter": N_("季度"), "total": N_("议定事项"), "closed": N_("已办结"), "closed_on_time": N_("按期办结"),
            "closed_late": N_("超期办结"), "open": N_("未办结"), "overdue": N_("逾期未办结"),
            "on_time_rate": N_("按期办结率")}),
]}
