"""Rollups (issue 29): the dashboard's costliest figures read small tables of sums and counts
kept current from a change log, instead of scanning the raw rows on every page.

- **Marks.** Every flush that inserts, changes, soft-deletes, restores or deletes a row a rollup
  counts appends `RollupMark` rows — (rollup, subject, period): the cells to recompute, with the
  old and the new keys when a key moved — in the same transaction (one `after_flush` listener:
  forms, the API, workflow moves, imports and the recycle bin all flush through it). The purge
  deletes only rows that were soft-deleted already, which no rollup counts; the Core UPDATEs of
  the app (a need's repeat count and resident rating, a post's claimed count, receipt numbers,
  the tree's paths) change no column a rollup reads — cells are keyed by community id, and a
  node's communities are read from the tree when a figure is read.
- **Apply.** `apply()` recomputes exactly the marked cells from the raw rows (recompute, not
  increment: idempotent, in any order) and deletes the marks it applied. A job applies them
  every minute where the queue exists (Celery beat, `gongjian.apply_rollups`); without one,
  `refresh()` applies pending marks, bounded, before a rolled-up figure is read.
- **Rebuild and check.** `flask gongjian rollups rebuild` recomputes every cell (migrations, the
  seeds' bulk inserts, repair); `flask gongjian rollups check` compares them with the raw rows.
- **Node cells.** A rollup keyed by community also keeps its sums at every node above a
  community (district, street; node 0: all data), without the unit: a node's cells are its
  subtree's community cells summed, so a figure at a node reads O(its months) rows however
  large the city (at a community, its community cells are as few). apply() recomputes, after the community cells it recomputed, the
  cells of those communities' ancestors (and of node 0) for the same months; a node moved in the
  tree (its path changes), retyped or purged marks its old and new ancestors (`NODES`).
- **Reading.** `cells()` gives the table and the rows a viewer's figure sums: the node cells
  of one node where the viewer's scope and the chosen node make one above a community (all
  data: node 0; a street's admin: its street); else the community cells where `cells_where()` can put the
  scope on their keys (a liaison: its unit's); anything else (a grid secretary, a member, a
  node below a community) reads the raw query, which stays the reference
  (tests/test_rollups.py holds them equal).

To add a rollup: a table of cells and a `Rollup` subclass (`computed()` or `rows()`,
`cells()`), in ROLLUPS; marks from `_mark` for each write that moves a cell; a migration that
creates the table and inserts an EVERY_CELL mark. Which cells a viewer's figure sums is
`viewer_where` (by default `cells_where`; a figure whose raw query also joins the member, whose
own scope applies, says so: MonthlyService). Keyed by community, it gets node cells by
declaring `nodes` (a table: node_id, then `node_keys` — its keys but the community and unit —
then the same sums) and `placed_by`; its figures read `cells(session, name, node_path)`.
"""
from __future__ import annotations

import logging
from calendar import monthrange
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import current_app, has_app_context
from sqlalchemy import (
    Boolean,
    Integer,
    and_,
    case,
    cast,
    delete,
    event,
    extract,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, get_history
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, ColumnElement
from sqlalchemy.sql.selectable import SelectBase
from sqlalchemy.sql.visitors import InternalTraversal, replacement_traverse

from app import clock
from app.models.cobuild import (
    MemberRegistration,
    MemberRegistrationStatus,
    PointEntry,
    RecordStatus,
    ServiceRecord,
    UnitRegistration,
    UnitRegistrationStatus,
)
from app.models.lists import (
    NEED_DONE,
    NEED_STEPS,
    WISH_PUBLISHED,
    MicroWish,
    Need,
    NeedResource,
    NeedStatus,
    ServiceItem,
    WishStatus,
    service_item_need,
)
from app.models.meetings import (
    PRESENT,
    REQUIRED_LEVEL_COLUMN,
    Attendance,
    BodyMember,
    JointBody,
    Meeting,
    MeetingStatus,
    Resolution,
    ResolutionStatus,
    level_rank,
)
from app.models.org import Member, MemberStatus, Organization, Unit, UnitStatus
from app.models.rollups import (
    AttendanceCell,
    AttendanceNode,
    MemberGroupCell,
    MonthlyServiceCell,
    NeedCommunityCell,
    NeedCount,
    NeedNode,
    PointBalance,
    PointsPaidCell,
    RegistrationCount,
    RegistrationNode,
    ResolutionCell,
    ResolutionNode,
    RollupLock,
    RollupMark,
    ServiceHoursCell,
    ServiceHoursNode,
    UnitOnesCell,
    WishCell,
    WishNode,
)
from app.security.principal import current_principal, unscoped

log = logging.getLogger(__name__)

MARKS = RollupMark.__table__
# Marks one page applies at most before it reads (no queue): a burst of writes is caught up a
# page at a time rather than by one slow page; the board says how current it is meanwhile.
PAGE_APPLY_LIMIT = 200
# Marks one run of the job applies at most.
JOB_APPLY_LIMIT = 20000


# --- the rollups ------------------------------------------------------------------------------

class Rollup:
    """A table of cells recomputed from the raw rows: `computed(subject, period)` is the SELECT
    giving the cells of a subject's period (all of them when None) in the table's column order;
    a rollup whose cells need Python (the zone's calendar) gives `rows()` instead."""

    name: str
    table = None
    # Cells too many to hold in memory at once (a city's subjects): checked by a merge of both
    # sides in key order, which needs keys that sort alike in Python and in the database.
    large = False
    # Node cells (see the module's docstring): the table (node_id, `node_keys`, the sums), and
    # the columns that place a cell under a node — its community, or either of two places,
    # counted once at a node holding both.
    nodes = None
    node_keys: tuple[str, ...] = ()
    placed_by: tuple[str, ...] = ("community_id",)

    def computed(self, subject=None, period=None):
        raise NotImplementedError

    def rows(self, connection, subject=None, period=None):
        """The cells the raw rows make, in key order."""
        width = len(self.table.primary_key.columns)
        raw = self.computed(subject, period).subquery()
        options = {"stream_results": True, "yield_per": 5000} if _streams(connection) else {}
        return connection.execute(select(raw).order_by(*list(raw.c)[:width])
                                  .execution_options(**options))

    def cells(self, subject=None, period=None):
        """The stored cells that `computed(subject, period)` gives."""
        raise NotImplementedError

    def viewer_where(self, session, node_path: str | None):
        """Which community cells the viewer's figure under the node sums (None: the raw
        query): by default what `cells_where` can put on the cells' keys."""
        return cells_where(session, self.table, node_path, self.placed_by)

    def recompute(self, connection, subject=None, period=None) -> None:
        connection.execute(delete(self.table).where(self.cells(subject, period)))
        connection.execute(insert(self.table).from_select(
            [c.name for c in self.table.columns], self.computed(subject, period)))

    # --- node cells ---

    @property
    def by_community(self) -> bool:
        """Whether the node cells keep the community (a per-community figure's rows): a
        community's changes are then recomputed at each node for that community alone."""
        return "community_id" in self.node_keys

    def _node_sums(self) -> list[str]:
        return [c.name for c in self.nodes.columns if c.name not in ("node_id", *self.node_keys)]

    def node_rows(self, node_id: int, path: str, period=None, community=None):
        """The SELECT of a node's cells from the community cells under it (`path` ""
        for node 0: every cell), of a month ("2026-07") or all, of one community or all."""
        from app.security.scope import subtree_ids

        src = self.table
        where = [_period_where(src, period)]
        if path:
            under = subtree_ids((path,))
            where.append(or_(*[src.c[column].in_(under) for column in self.placed_by]))
        if community is not None:
            where.append(src.c.community_id == community)
        keys = [src.c[k] for k in self.node_keys]
        return (select(literal(node_id, Integer).label("node_id"), *keys,
                       *[func.sum(src.c[name]).label(name) for name in self._node_sums()])
                .where(*where).group_by(*keys))

    def recompute_node(self, connection, node_id: int, path: str | None, period=None,
                       community=None) -> None:
        """A node's cells afresh (`path` None: the node is gone or no longer holds cells)."""
        t = self.nodes
        where = [t.c.node_id == node_id, _period_where(t, period)]
        if community is not None:
            where.append(t.c.community_id == community)
        connection.execute(delete(t).where(*where))
        if path is not None:
            connection.execute(insert(t).from_select(
                ["node_id", *self.node_keys, *self._node_sums()],
                self.node_rows(node_id, path, period, community)))

    def rebuild_nodes(self, connection, tree: Tree) -> None:
        connection.execute(delete(self.nodes))
        for node_id, path in tree.nodes():
            self.recompute_node(connection, node_id, path)

    def node_periods(self, connection, subject: int, period: str) -> set[str]:
        """The periods of node cells a recompute of the subject's cells may change: its
        period, or every month it has cells in (read before and after the recompute)."""
        if period or self.by_community:
            return {period}
        t = self.table
        return {f"{y}-{m:02d}" for y, m in connection.execute(
            select(t.c.year, t.c.month).distinct().where(self.cells(subject)))}

    def follow(self, connection, tree: Tree, communities: set[int], period: str) -> None:
        """The node cells over `communities`, whose cells of `period` were recomputed."""
        if not self.by_community:
            for node_id in sorted(tree.ancestors(communities)):
                self.recompute_node(connection, node_id, tree.path(node_id), period or None)
            return
        src, t = self.table, self.nodes
        for community in sorted(communities):
            # Where the community's cells lie now (by any place) and where they lay before.
            places = {community}
            for column in self.placed_by[1:]:
                places.update(connection.execute(select(src.c[column]).distinct().where(
                    src.c.community_id == community)).scalars())
            nodes = tree.ancestors(places) | set(connection.execute(
                select(t.c.node_id).distinct().where(t.c.community_id == community)).scalars())
            for node_id in sorted(nodes):
                self.recompute_node(connection, node_id, tree.path(node_id), period or None,
                                    community)


def _period_where(table, period: str | None):
    """A month's cells ("2026-07"), or every cell (None, "")."""
    if not period:
        return true()
    return and_(table.c.year == int(period[:4]), table.c.month == int(period[5:7]))


# Cells are keyed by community: a node at or above a community is the communities under it.
ROLLED_NODES = ("district", "street", "community")
# Node cells are kept for the nodes above a community (a community's ancestors are all of these
# types): a community's own figures read its community cells, already a few rows.
NODE_TYPES = ("district", "street")
ALL_DATA = 0  # the node whose cells are the whole data set's


def _segments(path: str) -> list[int]:
    return [int(part) for part in path.strip("/").split("/") if part]


class Tree:
    """The nodes that hold node cells (read once per apply): their paths, and the ancestors of
    a community among them. Soft-deleted nodes too: the raw queries place rows by path."""

    def __init__(self, connection):
        org = Organization.__table__
        self.connection = connection
        self.rolled = dict(connection.execute(
            select(org.c.id, org.c.path).where(org.c.type.in_(NODE_TYPES))).all())

    def nodes(self) -> list[tuple[int, str]]:
        return [(ALL_DATA, ""), *sorted(self.rolled.items())]

    def path(self, node_id: int) -> str | None:
        return "" if node_id == ALL_DATA else self.rolled.get(node_id)

    def ancestors(self, places) -> set[int]:
        """Node 0 and the nodes holding cells whose subtree holds one of `places`."""
        org = Organization.__table__
        places, paths = sorted({p for p in places if p}), []
        for start in range(0, len(places), 500):
            paths += self.connection.execute(select(org.c.path).where(
                org.c.id.in_(places[start:start + 500]))).scalars().all()
        return {ALL_DATA} | {n for path in paths for n in _segments(path) if n in self.rolled}


def _streams(connection) -> bool:
    """Whether the driver can hold two open results on one connection (not pymysql's)."""
    return connection.dialect.name not in ("mysql", "mariadb")


def _month_bounds(period: str) -> tuple[date, date]:
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def _stepping_in(table, steps, subject, period):
    """(where, wanted): a community's live rows (every community's: subject None) with one of
    their steps' instants in the period's month of the zone's calendar, and that month as the
    (year, month) the cells are keyed by (None: every month)."""
    where = [table.c.deleted_on.is_(None)]
    if subject is not None:
        where.append(table.c.community_id == subject)
    if not period:
        return where, None
    first, last = _month_bounds(period)
    begins, ends = clock.day_begins(first), clock.day_ends(last)
    where.append(or_(*[and_(step >= begins, step < ends) for step in steps]))
    return where, (first.year, first.month)


class InPython:
    """A rollup whose cells need Python (the zone's calendar, sets of quarters): `rows()` is
    a list, written in batches in place of an INSERT … SELECT."""

    def recompute(self, connection, subject=None, period=None) -> None:
        connection.execute(delete(self.table).where(self.cells(subject, period)))
        rows = self.rows(connection, subject, period)
        names = [c.name for c in self.table.columns]
        for start in range(0, len(rows), 5000):
            connection.execute(insert(self.table), [dict(zip(names, row, strict=True))
                                                    for row in rows[start:start + 5000]])


class CommunityMonths(Rollup):
    """Cells keyed by the node that places them (the subject: a community; a joint body's host
    for the meetings' rollups) and month ("2026-07", the period)."""

    def cells(self, subject=None, period=None):
        t, where = self.table, []
        if subject is not None:
            where.append(t.c[self.placed_by[0]] == subject)
        if period:
            where += [t.c.year == int(period[:4]), t.c.month == int(period[5:7])]
        return and_(true(), *where)


class ServiceHours(CommunityMonths):
    """Certified service hours and records per (member's community, member's work unit, month
    served); subject: the community (0: members deleted), period: "2026-07" or every month."""

    name = "service_hours"
    table = ServiceHoursCell.__table__
    nodes = ServiceHoursNode.__table__
    node_keys = ("year", "month")

    @staticmethod
    def keys():
        member = Member.__table__
        live = member.c.deleted_on.is_(None)
        return (case((live, member.c.community_id), else_=0),
                case((live, func.coalesce(member.c.work_unit_id, 0)), else_=0))

    def computed(self, subject=None, period=None):
        record, member = ServiceRecord.__table__, Member.__table__
        community, unit = self.keys()
        year = cast(extract("year", record.c.served_on), Integer)
        month = cast(extract("month", record.c.served_on), Integer)
        stmt = (select(community.label("community_id"), unit.label("unit_id"), year.label("year"),
                       month.label("month"), func.sum(record.c.hours).label("hours"),
                       func.count().label("records"))
                .select_from(record.join(member, member.c.id == record.c.member_id))
                .where(record.c.status == RecordStatus.CERTIFIED, record.c.deleted_on.is_(None)))
        if subject is not None:
            stmt = stmt.where(member.c.deleted_on.is_not(None) if subject == 0 else
                              and_(member.c.community_id == subject, member.c.deleted_on.is_(None)))
        if period:
            stmt = stmt.where(record.c.served_on.between(*_month_bounds(period)))
        return stmt.group_by(community, unit, year, month)


class PointBalances(Rollup):
    """Net points and entries per subject (member or unit) and ledger quarter, plus its year's
    four quarters; subject: the member or unit, period: the year ("2026")."""

    table = PointBalance.__table__
    large = True

    def __init__(self, subject_type: str):
        self.subject_type, self.name = subject_type, f"points_{subject_type}"

    def _subject(self):
        entry = PointEntry.__table__
        return entry.c.member_id if self.subject_type == "member" else entry.c.unit_id

    def computed(self, subject=None, period=None):
        entry, column = PointEntry.__table__, self._subject()
        where = [entry.c.subject_type == self.subject_type, entry.c.deleted_on.is_(None)]
        if subject is not None:
            where.append(column == subject)
        quarter = entry.c.period.like("____Q_")
        if period:
            where.append(entry.c.period.like(f"{period}Q_"))
        year = func.substr(entry.c.period, 1, 4)
        kind = literal(self.subject_type)
        per_quarter = (select(kind.label("subject_type"), column.label("subject_id"),
                              entry.c.period.label("period"),
                              func.sum(entry.c.delta).label("points"),
                              func.count().label("entries"))
                       .where(*where).group_by(column, entry.c.period))
        per_year = (select(kind, column, year, func.sum(entry.c.delta), func.count())
                    .where(*where, quarter).group_by(column, year))
        return union_all(per_quarter, per_year)

    def cells(self, subject=None, period=None):
        t = self.table
        where = [t.c.subject_type == self.subject_type]
        if subject is not None:
            where.append(t.c.subject_id == subject)
        if period:
            where.append(or_(t.c.period == period, t.c.period.like(f"{period}Q_")))
        return and_(*where)


class PointsPaid(InPython, Rollup):
    """积分发放 of the whole ledger (`PointsPaidCell`): its entries by the month, in the zone's
    calendar, they were written in — subject 0 (the ledger), period a month ("2026-07"). Each
    month is counted between its own bounds (UTC instants), one statement per month."""

    name = "points_paid"
    table = PointsPaidCell.__table__

    def rows(self, connection, subject=None, period=None):
        entry = PointEntry.__table__
        live = entry.c.deleted_on.is_(None)
        if period:
            months = [_month_bounds(period)[0]]
        else:
            first, last = connection.execute(select(func.min(entry.c.created_on),
                                                    func.max(entry.c.created_on)).where(live)).one()
            months = []
            if first is not None:
                day, last = clock.to_local(first).date().replace(day=1), clock.to_local(last).date()
                while day <= last:
                    months.append(day)
                    day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        found = []
        for first in months:
            ends = clock.day_ends(_month_bounds(f"{first:%Y-%m}")[1])
            found += [(kind, entry_kind, first.year, first.month, int(n), points)
                      for kind, entry_kind, n, points in connection.execute(
                          select(entry.c.subject_type, entry.c.kind, func.count(),
                                 func.sum(entry.c.delta))
                          .where(live, entry.c.created_on >= clock.day_begins(first),
                                 entry.c.created_on < ends)
                          .group_by(entry.c.subject_type, entry.c.kind))]
        return sorted(found)

    def cells(self, subject=None, period=None):
        return _period_where(self.table, period)


class Registrations(Rollup):
    """双报到's counts (`RegistrationCount`); subject: the community (of the unit, the member's
    home, the registration), every period at once (a community's few thousand rows)."""

    name = "registration"
    table = RegistrationCount.__table__
    nodes = RegistrationNode.__table__
    node_keys = ("kind", "community_id", "year", "month")
    placed_by = ("community_id", "home_id")

    def computed(self, subject=None, period=None):
        unit, member = Unit.__table__, Member.__table__
        unit_reg, member_reg = UnitRegistration.__table__, MemberRegistration.__table__
        zero = literal(0)

        def counted(kind, community, home, unit_id, day, from_, *where):
            year = cast(extract("year", day), Integer) if day is not None else zero
            month = cast(extract("month", day), Integer) if day is not None else zero
            if subject is not None:
                where += (community == subject,)
            return (select(literal(kind).label("kind"), community.label("community_id"),
                           home.label("home_id"), unit_id.label("unit_id"), year.label("year"),
                           month.label("month"), func.count().label("count"))
                    .select_from(from_).where(*where)
                    # Not by a constant: PostgreSQL reads GROUP BY 0 as a column's position.
                    .group_by(*[e for e in (community, home, unit_id, year, month)
                                if e is not zero]))

        live_member = member.c.deleted_on.is_(None)
        return union_all(
            counted("unit", unit.c.community_id, zero, unit.c.id, None, unit,
                    unit.c.status == UnitStatus.REGISTERED, unit.c.deleted_on.is_(None)),
            counted("unit_reg", unit_reg.c.community_id, zero, unit_reg.c.unit_id,
                    unit_reg.c.registered_on, unit_reg,
                    unit_reg.c.status == UnitRegistrationStatus.REGISTERED,
                    unit_reg.c.deleted_on.is_(None)),
            counted("member", member.c.community_id, zero,
                    func.coalesce(member.c.work_unit_id, 0), None, member,
                    member.c.category == "在职", member.c.status == MemberStatus.ACTIVE,
                    live_member),
            counted("member_reg", member_reg.c.community_id,
                    case((and_(live_member, member.c.group_id.is_not(None)),
                          member.c.community_id), else_=0),
                    case((live_member, func.coalesce(member.c.work_unit_id, 0)), else_=0),
                    member_reg.c.registered_on,
                    member_reg.join(member, member.c.id == member_reg.c.member_id),
                    member_reg.c.status == MemberRegistrationStatus.REGISTERED,
                    member_reg.c.deleted_on.is_(None)))

    def cells(self, subject=None, period=None):
        return true() if subject is None else self.table.c.community_id == subject


class Needs(InPython, CommunityMonths):
    """需求清单's counts (`NeedCount`) by month in the zone's calendar — a need raised at 23:30
    on 31 July in Shanghai is July's, though stored as a UTC instant of the same day; cut in
    Python (clock.to_local), as every database would cut it differently. Subject: the
    community (a need's grid lies in it: models.lists._check_grid); period: a month ("2026-07"),
    whose needs raised and needs closed in it are recomputed."""

    name = "need"
    table = NeedCount.__table__
    nodes = NeedNode.__table__
    node_keys = ("kind", "year", "month", "category_id", "status")

    def rows(self, connection, subject=None, period=None):
        need = Need.__table__
        where, wanted = _stepping_in(need, (need.c.created_on, need.c.completed_on), subject,
                                     period)
        # `Need.matched` over the Core table: the links' own rows, whoever may see them.
        matched = case((Need.matched, 1), else_=0)
        stmt = select(need.c.community_id, need.c.created_on, need.c.completed_on,
                      need.c.deadline, need.c.category_id, need.c.status,
                      need.c.satisfaction, matched).where(*where)
        options = {"stream_results": True, "yield_per": 5000} if _streams(connection) else {}
        cells: dict[tuple, list] = {}
        for c, created, completed, deadline, category, status, satisfaction, linked in \
                connection.execute(stmt.execution_options(**options)):
            done = status in NEED_DONE
            raised = clock.to_local(created)
            if wanted is None or (raised.year, raised.month) == wanted:
                cell = cells.setdefault((c, "raised", raised.year, raised.month, category, status),
                                        [0, 0, Decimal(0), 0, 0, 0, 0, 0])
                cell[0] += 1
                cell[7] += linked
                if done and completed is not None:
                    cell[1] += 1
                    cell[2] += Decimal(str((completed - created).total_seconds()))
                    if deadline is not None and completed <= deadline:
                        cell[3] += 1
                if status == NeedStatus.VISITED:
                    cell[4] += 1
                    if satisfaction is not None:
                        cell[5] += 1
                        cell[6] += satisfaction
            closed = clock.to_local(completed) if done and completed is not None else None
            if closed is not None and (wanted is None or (closed.year, closed.month) == wanted):
                cell = cells.setdefault((c, "closed", closed.year, closed.month, category, status),
                                        [0, 0, Decimal(0), 0, 0, 0, 0, 0])
                cell[0] += 1
        return [key + tuple(values) for key, values in sorted(cells.items())]


class MonthlyService(CommunityMonths):
    """双报到's monthly service (`MonthlyServiceCell`): the members registered (已报到) per
    registration community, home community, grid or not, and work unit, as they stand (year
    and month 0), and of them those who served in each month (a service record dated in it,
    not refused: models.cobuild.served_between). Subject: the registration's community;
    period: a month ("2026-07": its served cells only) or every month and the standing counts.
    No node cells: the figure lists every (community, work unit) under the node, so a node's
    cells would be as many as its communities' (a city's all data: 329,141 either way)."""

    name = "monthly_service"
    table = MonthlyServiceCell.__table__
    # A city's registrations times the months they served in: checked by a merge.
    large = True

    def computed(self, subject=None, period=None):
        reg, member, record = (MemberRegistration.__table__, Member.__table__,
                               ServiceRecord.__table__)
        # The raw figure's rows: a live 已报到 registration joined to its live member.
        registered = [reg.c.status == MemberRegistrationStatus.REGISTERED,
                      reg.c.deleted_on.is_(None), member.c.deleted_on.is_(None)]
        if subject is not None:
            registered.append(reg.c.community_id == subject)
        keys = (reg.c.community_id.label("community_id"), member.c.community_id.label("home_id"),
                case((member.c.group_id.is_not(None), 1), else_=0).label("grouped"),
                func.coalesce(member.c.work_unit_id, 0).label("unit_id"))
        joined = reg.join(member, member.c.id == reg.c.member_id)
        served = [record.c.status != RecordStatus.REJECTED, record.c.deleted_on.is_(None)]
        if period:
            served.append(record.c.served_on.between(*_month_bounds(period)))
        parts = [select(*keys, cast(extract("year", record.c.served_on), Integer).label("year"),
                        cast(extract("month", record.c.served_on), Integer).label("month"),
                        reg.c.id.label("registration_id"))
                 .select_from(joined.join(record, record.c.member_id == reg.c.member_id))
                 .where(*registered, *served)]
        if not period:
            parts.append(select(*keys, literal(0, Integer).label("year"),
                                literal(0, Integer).label("month"), reg.c.id)
                         .select_from(joined).where(*registered))
        # Grouped outside the union: a registration counts once a month however many records
        # it has, and PostgreSQL takes no bound constant (the CASE's) in GROUP BY as the same.
        rows = union_all(*parts).subquery()
        keys = [rows.c.community_id, rows.c.home_id, rows.c.grouped, rows.c.unit_id,
                rows.c.year, rows.c.month]
        return (select(*keys, func.count(rows.c.registration_id.distinct()).label("members"))
                .group_by(*keys))

    def viewer_where(self, session, node_path: str | None):
        """The raw figure reads a registration placed under a node by its community or by its
        member's grid, and joins the member, whose own scope applies too: a street's or a
        community's admin counts only the members living in its subtree (home_id; their grid
        lies in their home community), a liaison those working in its unit. All data reads
        every cell; a grid, a member, several kinds of grant: the raw query."""
        t = self.table
        return cells_where(session, t, node_path, home=t.c.home_id, placed=lambda nodes: or_(
            t.c.community_id.in_(nodes), and_(t.c.grouped == 1, t.c.home_id.in_(nodes))))


class UnitOnes(InPython, Rollup):
    """The 三个一 of each unit per year (`UnitOnesCell`), as `services.cobuild.AgreementOnes`
    counts them over the whole year; subject: the unit, every year at once (a unit's few cells).
    AgreementOnes counts up to today: the same rows, since a meeting is not recorded as held
    on a later day (models.meetings.Meeting.validate) and a need is closed at the moment of its
    move. Quarters by the meeting's date (a calendar date of the zone); a need's year by its
    办结 instant in the zone's calendar, cut in Python as `Needs` cuts its months."""

    name = "unit_ones"
    table = UnitOnesCell.__table__

    @staticmethod
    def _quarters(connection, subject, source, unit_column, *where):
        """(unit, year) -> the quarters in which `source` (joined to the held meetings) has a row."""
        meeting = Meeting.__table__
        month = extract("month", meeting.c.held_on)
        quarter = case((month <= 3, 1), (month <= 6, 2), (month <= 9, 3), else_=4)
        stmt = (select(unit_column, cast(extract("year", meeting.c.held_on), Integer), quarter)
                .distinct().select_from(source)
                .where(meeting.c.status == MeetingStatus.HELD, meeting.c.held_on.is_not(None),
                       meeting.c.deleted_on.is_(None), *where))
        if subject is not None:
            stmt = stmt.where(unit_column == subject)
        found: dict[tuple[int, int], set[int]] = {}
        for unit_id, year, q in connection.execute(stmt):
            found.setdefault((unit_id, int(year)), set()).add(int(q))
        return found

    def rows(self, connection, subject=None, period=None):
        meeting, member = Meeting.__table__, BodyMember.__table__
        attendance, need = Attendance.__table__, Need.__table__
        held = self._quarters(connection, subject,
                              member.join(meeting, meeting.c.body_id == member.c.body_id),
                              member.c.unit_id, member.c.deleted_on.is_(None))
        attended = self._quarters(connection, subject,
                                  attendance.join(meeting, meeting.c.id == attendance.c.meeting_id),
                                  attendance.c.unit_id, attendance.c.deleted_on.is_(None),
                                  attendance.c.status.in_(PRESENT))
        stmt = select(need.c.assigned_unit_id, need.c.completed_on).where(
            need.c.deleted_on.is_(None), need.c.status.in_(NEED_DONE),
            need.c.completed_on.is_not(None), need.c.assigned_unit_id.is_not(None))
        if subject is not None:
            stmt = stmt.where(need.c.assigned_unit_id == subject)
        options = {"stream_results": True, "yield_per": 5000} if _streams(connection) else {}
        closed: dict[tuple[int, int], int] = {}
        for unit_id, completed in connection.execute(stmt.execution_options(**options)):
            key = (unit_id, clock.to_local(completed).year)
            closed[key] = closed.get(key, 0) + 1
        rows = []
        for key in sorted(held.keys() | closed.keys()):
            quarters = held.get(key, set())
            rows.append((*key, len(quarters), len(quarters & attended.get(key, set())),
                         closed.get(key, 0)))
        return rows

    def cells(self, subject=None, period=None):
        return true() if subject is None else self.table.c.unit_id == subject


class MemberGroups(Rollup):
    """The live members per (community, 所在网格) (`MemberGroupCell`); subject: the community,
    every cell of it at once (no period: members are counted as they stand)."""

    name = "member_group"
    table = MemberGroupCell.__table__

    def computed(self, subject=None, period=None):
        member = Member.__table__
        community = member.c.community_id

        def count_if(condition):
            return func.sum(case((condition, 1), else_=0))

        stmt = (select(community.label("community_id"), member.c.group_id,
                       func.count().label("members"),
                       count_if(member.c.is_red_grid_worker).label("red"),
                       count_if(member.c.is_household_center).label("household"))
                .where(member.c.group_id.is_not(None), member.c.deleted_on.is_(None)))
        if subject is not None:
            stmt = stmt.where(community == subject)
        return stmt.group_by(community, member.c.group_id)

    def cells(self, subject=None, period=None):
        return true() if subject is None else self.table.c.community_id == subject


class NeedCommunities(InPython, CommunityMonths):
    """The needs raised per community and month, and of them those closed and those open
    (`NeedCommunityCell`): `Needs`' raised cells summed over category and status — where a
    city's year of those cells is 200,000 rows, these are one per community and month. Its
    subject and period are `Needs`', marked by the same writes."""

    name = "need_community"
    table = NeedCommunityCell.__table__

    def rows(self, connection, subject=None, period=None):
        sums: dict[tuple, list[int]] = {}
        for community, kind, year, month, _category, status, count, *_ in \
                ROLLUPS[Needs.name].rows(connection, subject, period):
            if kind == "raised":
                cell = sums.setdefault((community, year, month), [0, 0, 0])
                cell[0] += count
                cell[1] += count if status in NEED_DONE else 0
                cell[2] += count if status in NEED_OPEN else 0
        return [key + tuple(values) for key, values in sorted(sums.items())]


# The statuses a need waits at a step in (受理, 派单, 接单, 办理): the ones it can be late at.
NEED_OPEN = tuple(status for status, _step in NEED_STEPS)

# A wish claimed, whatever came of it after (认领率's numerator).
WISH_CLAIMED = (WishStatus.CLAIMED, WishStatus.FULFILLED, WishStatus.CONFIRMED)


class Wishes(InPython, CommunityMonths):
    """微心愿 (`WishCell`) per community and month in the zone's calendar, each step counted in
    the month of its own instant, cut in Python as `Needs` cuts them. Subject: the community (a
    wish's grid lies in it); period: a month, whose steps are recomputed."""

    name = "wish"
    table = WishCell.__table__
    nodes = WishNode.__table__
    node_keys = ("year", "month")

    def rows(self, connection, subject=None, period=None):
        wish = MicroWish.__table__
        steps = (wish.c.created_on, wish.c.claimed_on, wish.c.fulfilled_on)
        where, wanted = _stepping_in(wish, steps, subject, period)
        stmt = select(wish.c.community_id, wish.c.status, *steps).where(*where)
        options = {"stream_results": True, "yield_per": 5000} if _streams(connection) else {}
        cells: dict[tuple, list[int]] = {}
        for community, status, *moments in connection.execute(stmt.execution_options(**options)):
            for step, moment in enumerate(moments):
                if moment is None:
                    continue
                local = clock.to_local(moment)
                if wanted is not None and (local.year, local.month) != wanted:
                    continue
                cell = cells.setdefault((community, local.year, local.month), [0, 0, 0, 0, 0])
                cell[step] += 1
                if step == 0 and status in WISH_PUBLISHED:
                    cell[3] += 1
                    cell[4] += status in WISH_CLAIMED
        return [key + tuple(values) for key, values in sorted(cells.items())]


class HostMonths(CommunityMonths):
    """Cells of the joint meetings, keyed by the host of the meeting's joint body (the subject:
    a district's, a street's or a community's node — the meetings' scope places their rows by
    it, and the figures' node by its subtree) and month (the period). Counted over the live
    rows of the three tables the raw figures join: a meeting of a deleted body is not counted."""

    placed_by = ("host_id",)
    node_keys: tuple[str, ...] = ("year", "month")

    @staticmethod
    def _hosted(rows, day, subject, period):
        """(source, where, year, month): live rows of attendance or resolutions joined to their
        meeting and its body (whose host places them), with a `day` (in the period's month), and
        that day's year and month."""
        meeting, body = Meeting.__table__, JointBody.__table__
        where = [rows.c.deleted_on.is_(None), meeting.c.deleted_on.is_(None),
                 body.c.deleted_on.is_(None), day.is_not(None)]
        if subject is not None:
            where.append(body.c.host_id == subject)
        if period:
            where.append(day.between(*_month_bounds(period)))
        source = (rows.join(meeting, meeting.c.id == rows.c.meeting_id)
                  .join(body, body.c.id == meeting.c.body_id))
        return (source, where, cast(extract("year", day), Integer),
                cast(extract("month", day), Integer))


class MeetingAttendance(HostMonths):
    """参会记录 of the meetings held (`AttendanceCell`), by host, type and month held: 参会率's
    records and present, 参会职级's present below the body's required level for the type."""

    name = "attendance"
    table = AttendanceCell.__table__
    nodes = AttendanceNode.__table__
    node_keys = ("type", "year", "month")

    def computed(self, subject=None, period=None):
        attendance, meeting, body = Attendance.__table__, Meeting.__table__, JointBody.__table__
        # `Attendance.non_compliant`, as services.meetings.leader_compliance counts it.
        required = case(*((meeting.c.type == type_, body.c[column])
                          for type_, column in REQUIRED_LEVEL_COLUMN.items()), else_=None)
        present = attendance.c.status.in_(PRESENT)
        below = and_(present, meeting.c.type.in_(tuple(REQUIRED_LEVEL_COLUMN)),
                     level_rank(attendance.c.attendee_level) > level_rank(required))
        source, where, year, month = self._hosted(attendance, meeting.c.held_on, subject, period)
        return (select(body.c.host_id.label("host_id"), meeting.c.type.label("type"),
                       year.label("year"), month.label("month"), func.count().label("records"),
                       func.sum(case((present, 1), else_=0)).label("present"),
                       func.sum(case((below, 1), else_=0)).label("below"))
                .select_from(source).where(*where, meeting.c.status == MeetingStatus.HELD)
                .group_by(body.c.host_id, meeting.c.type, year, month))


class Resolutions(HostMonths):
    """议定事项 (`ResolutionCell`) by host and month of the deadline: how many, closed, closed by
    the deadline. Which of the open ones are overdue depends on the day: those of a month
    before today's are, today's month's are counted live (services.meetings.resolution_figures)."""

    name = "resolution"
    table = ResolutionCell.__table__
    nodes = ResolutionNode.__table__

    def computed(self, subject=None, period=None):
        resolution, body = Resolution.__table__, JointBody.__table__
        done = resolution.c.status == ResolutionStatus.DONE
        source, where, year, month = self._hosted(resolution, resolution.c.deadline, subject,
                                                  period)
        return (select(body.c.host_id.label("host_id"), year.label("year"),
                       month.label("month"), func.count().label("total"),
                       func.sum(case((done, 1), else_=0)).label("closed"),
                       func.sum(case((and_(done, resolution.c.closed_on <= resolution.c.deadline),
                                      1), else_=0)).label("on_time"))
                .select_from(source).where(*where)
                .group_by(body.c.host_id, year, month))


ROLLUPS = {r.name: r for r in (ServiceHours(), PointBalances("member"), PointBalances("unit"),
                               PointsPaid(), Registrations(), Needs(), MonthlyService(),
                               UnitOnes(), MemberGroups(), NeedCommunities(),
                               MeetingAttendance(), Resolutions(), Wishes())}


# --- marks: written with every write of a row a rollup counts -----------------------------------

def _old_and_new(obj, column: str, relation: str | None = None) -> set:
    """The attribute's value now and before this flush (a relationship's or its column's)."""
    values = {getattr(obj, column)}
    history = get_history(obj, column)
    values.update(history.deleted)
    if relation is not None:
        values.update(getattr(o, "id", None) for o in get_history(obj, relation).deleted)
    return values


def _changed(obj, keys) -> bool:
    return any(get_history(obj, key).has_changes() for key in keys)


def _month(day) -> str | None:
    return f"{day:%Y-%m}" if day is not None else None


def _service_record_marks(session, obj, wanted: set) -> None:
    # Every record of the flush, changed or not: its status is its version column, whose
    # history the flush has already reset here — a certification would look like no change.
    months = {_month(d) for d in _old_and_new(obj, "served_on")} - {None}
    for member_id in _old_and_new(obj, "member_id", "member") - {None}:
        wanted.update((member_id, month) for month in months)


# What places a member's service records' cells, and what else counts it for 双报到.
_MEMBER_SERVICE_KEYS = ("community_id", "community", "work_unit_id", "work_unit", "deleted_on")
_MEMBER_KEYS = (*_MEMBER_SERVICE_KEYS, "group_id", "group", "category", "status")


# What places a member in 各网格党员's cells, and what it counts for there.
_MEMBER_GROUP_KEYS = ("community_id", "community", "group_id", "group", "is_red_grid_worker",
                      "is_household_center", "deleted_on")


def _member_group_marks(session, obj, marks: set) -> None:
    if obj in session.new or obj in session.deleted or _changed(obj, _MEMBER_GROUP_KEYS):
        marks.update((MemberGroups.name, c, "")
                     for c in _old_and_new(obj, "community_id", "community") - {None})


def _member_marks(session, obj, marks: set, moved: set) -> None:
    """A member counts in its community's 双报到 figures, and its registrations elsewhere are
    placed by its grid and work unit (`moved`: their communities are looked up after). One
    moved, deleted or restored moves its service records' cells: every month of the
    communities it leaves and joins (0: deleted)."""
    new = obj in session.new
    if not new and obj not in session.deleted and not _changed(obj, _MEMBER_KEYS):
        return
    communities = _old_and_new(obj, "community_id", "community") - {None}
    marks.update((Registrations.name, c, "") for c in communities)
    if new or not _changed(obj, _MEMBER_SERVICE_KEYS + ("group_id", "group")):
        return
    moved.add(obj.id)
    if not _changed(obj, _MEMBER_SERVICE_KEYS):
        return
    deleted = {d is not None for d in _old_and_new(obj, "deleted_on")}
    if False in deleted:
        marks.update((ServiceHours.name, c, "") for c in communities)
    if True in deleted:
        marks.add((ServiceHours.name, 0, ""))


def _registration_marks(session, obj, marks: set) -> None:
    """A unit, or a registration of either kind, counts in its community (every write: a
    registration's status is its version column, see _service_record_marks)."""
    if isinstance(obj, Unit) and obj not in session.new and obj not in session.deleted \
            and not _changed(obj, ("community_id", "community", "status", "deleted_on")):
        return
    communities = _old_and_new(obj, "community_id", "community") - {None}
    marks.update((Registrations.name, c, "") for c in communities)
    if isinstance(obj, MemberRegistration):  # who is registered there, every month
        marks.update((MonthlyService.name, c, "") for c in communities)


def _need_marks(session, obj, marks: set) -> None:
    """Every write of a need (its status is its version column): the months, in the zone's
    calendar, it was raised and closed in, before and after, in its community before and after."""
    moments = _old_and_new(obj, "created_on") | _old_and_new(obj, "completed_on")
    months = {f"{clock.to_local(m or clock.utcnow()):%Y-%m}" for m in moments if m is not None}
    months.add(f"{clock.to_local(obj.created_on or clock.utcnow()):%Y-%m}")
    marks.update((name, c, month) for name in (Needs.name, NeedCommunities.name)
                 for c in _old_and_new(obj, "community_id", "community") - {None}
                 for month in months)
    # The units it was dispatched to, before and after: their needs closed (三个一).
    marks.update((UnitOnes.name, u, "")
                 for u in _old_and_new(obj, "assigned_unit_id", "assigned_unit") - {None})


def _meeting_marks(session, obj, marks: set, meetings: set) -> None:
    """The 三个一 of the units a meeting, an attendance or a body membership counts for: every
    write (a meeting's status is its version column, see _service_record_marks). A meeting's
    units — its bodies' members, its attendees — are looked up after (`meetings`: (meeting,
    body ids))."""
    if isinstance(obj, Meeting):
        meetings.add((obj.id, frozenset(_old_and_new(obj, "body_id", "body") - {None})))
        return
    marks.update((UnitOnes.name, u, "") for u in _old_and_new(obj, "unit_id", "unit") - {None})


def _hosted_marks(session, obj, marks: set, hosted: dict) -> None:
    """The meetings' rollups (`HostMonths`) of the host a meeting, an attendance, a resolution
    or a joint body counts under, before and after. What lies on the meeting or the body (its
    host, its day) is looked up after (`hosted`: meeting ids and body ids to (rollup, period)):
    - a meeting, every write (its status is its version column): its days held, before and
      after, in its bodies' hosts; moved to another body, deleted or restored, its resolutions
      too, every month;
    - an attendance: its meetings' (before and after) day held;
    - a resolution, every write: the months of its deadline, before and after;
    - a body whose host, required levels or deletion changed: every month of its hosts."""
    if isinstance(obj, Meeting):
        periods = {(MeetingAttendance.name, _month(d))
                   for d in _old_and_new(obj, "held_on") - {None}}
        if obj in session.deleted or _changed(obj, ("body_id", "body", "deleted_on")):
            periods.add((Resolutions.name, ""))
        for body in _old_and_new(obj, "body_id", "body") - {None}:
            hosted.setdefault(("body", body), set()).update(periods)
    elif isinstance(obj, Attendance):
        for meeting in _old_and_new(obj, "meeting_id", "meeting") - {None}:
            hosted.setdefault(("held", meeting), set()).add((MeetingAttendance.name, None))
    elif isinstance(obj, Resolution):
        months = {_month(d) for d in _old_and_new(obj, "deadline")} - {None}
        for meeting in _old_and_new(obj, "meeting_id", "meeting") - {None}:
            hosted.setdefault(("meeting", meeting), set()).update(
                (Resolutions.name, month) for month in months)
    elif obj not in session.new:  # a joint body, which no meeting has yet when new
        rollups = set()
        if obj in session.deleted or _changed(obj, ("host_id", "host", "deleted_on")):
            rollups = {MeetingAttendance.name, Resolutions.name}
        elif _changed(obj, tuple(REQUIRED_LEVEL_COLUMN.values())):
            rollups = {MeetingAttendance.name}
        marks.update((name, host, "") for name in rollups
                     for host in _old_and_new(obj, "host_id", "host") - {None})


def _hosted_lookup(connection, hosted: dict, marks: set) -> None:
    """`_hosted_marks`' marks of the meetings and bodies, their hosts (and days held) read."""
    meeting, body = Meeting.__table__, JointBody.__table__
    wanted: dict[str, set] = {}
    for kind, pk in hosted:
        wanted.setdefault(kind, set()).add(pk)
    found: dict[tuple[str, int], list] = {}
    if "body" in wanted:
        for pk, host in connection.execute(select(body.c.id, body.c.host_id).where(
                body.c.id.in_(sorted(wanted["body"])))):
            found[("body", pk)] = [(host, None)]
    meetings = sorted(wanted.get("meeting", set()) | wanted.get("held", set()))
    if meetings:
        for pk, host, held_on in connection.execute(
                select(meeting.c.id, body.c.host_id, meeting.c.held_on)
                .select_from(meeting.join(body, body.c.id == meeting.c.body_id))
                .where(meeting.c.id.in_(meetings))):
            found[("meeting", pk)] = [(host, None)]
            found[("held", pk)] = [(host, _month(held_on))] if held_on is not None else []
    for key, periods in hosted.items():
        for host, held in found.get(key, ()):
            marks.update((name, host, held if period is None else period)
                         for name, period in periods)


def _wish_marks(session, obj, marks: set) -> None:
    """Every write of a wish (its status is its version column): the months, in the zone's
    calendar, of its steps before and after, in its community before and after."""
    moments = set()
    for step in ("created_on", "claimed_on", "fulfilled_on"):
        moments |= _old_and_new(obj, step)
    moments.add(obj.created_on or clock.utcnow())
    marks.update((Wishes.name, c, f"{clock.to_local(m):%Y-%m}")
                 for c in _old_and_new(obj, "community_id", "community") - {None}
                 for m in moments if m is not None)


def _matched_marks(session, obj, linked: set, items: set) -> None:
    """Whether a need is matched (`Need.matched`) changes with its service items' links and
    their deletion, and with its resources' confirmation (`linked`: the needs; `items`: the
    service items deleted or restored, whose needs are looked up after)."""
    if isinstance(obj, NeedResource):  # every write: its status may be its version column
        linked.update(_old_and_new(obj, "need_id", "need") - {None})
        return
    # What the flush changed of the links, without loading the collection here (a need linked
    # from its own side is a need written, marked as one).
    history = get_history(obj, "needs", passive=PASSIVE_NO_INITIALIZE)
    linked.update(n.id for n in (*history.added, *history.deleted) if n.id is not None)
    if obj not in session.new and (obj in session.deleted or _changed(obj, ("deleted_on",))):
        items.add(obj.id)


def _point_entry_marks(session, obj, marks: set) -> None:
    # The ledger is append-only (models.cobuild): an entry is only ever inserted — the recycle
    # bin aside, which 积分发放's month follows.
    marks.update((PointsPaid.name, 0, f"{clock.to_local(m):%Y-%m}")
                 for m in _old_and_new(obj, "created_on") | {obj.created_on or clock.utcnow()}
                 if m is not None)
    subject = obj.member_id if obj.subject_type == "member" else obj.unit_id
    if obj in session.new and subject is not None and obj.period:
        marks.add((f"points_{obj.subject_type}", subject, obj.period[:4]))


# The mark of a node whose subtree changed: its cells of every rollup are recomputed (subject:
# the node; EVERY_CELL: every node's, as a migration that adds node cells asks).
NODES = "nodes"


def _node_marks(session, obj, marks: set) -> None:
    """A node moved (its path), retyped or purged changes the subtrees of the nodes above it,
    before and after: mark them, and itself. Its descendants' paths follow by a Core UPDATE
    (models.org._move_subtree), their subtrees unchanged. A node inserted has no cells yet."""
    if obj in session.new:
        return
    if obj not in session.deleted and not _changed(obj, ("path", "type")):
        return
    paths = _old_and_new(obj, "path") - {None}
    marks.update((NODES, n, "") for path in paths for n in _segments(path))
    marks.add((NODES, obj.id, ""))


@event.listens_for(Session, "after_flush")
def _mark(session, flush_context) -> None:
    """Append the marks of this flush's writes, in its transaction (the history is still the
    flush's own here)."""
    marks: set = set()
    served: set = set()  # (member id, month) of service records written
    moved: set = set()  # members whose registrations' places changed
    meetings: set = set()  # (meeting id, its body ids before and after) written
    hosted: dict = {}  # the meetings' rollups' marks whose host is looked up (_hosted_marks)
    linked: set = set()  # needs whose links to service items or resources changed
    items: set = set()  # service items deleted or restored
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, ServiceRecord):
            _service_record_marks(session, obj, served)
        elif isinstance(obj, Member):
            _member_marks(session, obj, marks, moved)
            _member_group_marks(session, obj, marks)
        elif isinstance(obj, (Unit, UnitRegistration, MemberRegistration)):
            _registration_marks(session, obj, marks)
        elif isinstance(obj, Need):
            _need_marks(session, obj, marks)
        elif isinstance(obj, PointEntry):
            _point_entry_marks(session, obj, marks)
        elif isinstance(obj, Organization):
            _node_marks(session, obj, marks)
        elif isinstance(obj, (Meeting, Attendance, BodyMember)):
            _meeting_marks(session, obj, marks, meetings)
        elif isinstance(obj, (ServiceItem, NeedResource)):
            _matched_marks(session, obj, linked, items)
        elif isinstance(obj, MicroWish):
            _wish_marks(session, obj, marks)
        if isinstance(obj, (Meeting, Attendance, Resolution, JointBody)):
            _hosted_marks(session, obj, marks, hosted)
    connection = session.connection() \
        if (marks or served or meetings or hosted or linked or items) else None
    if hosted:
        _hosted_lookup(connection, hosted, marks)
    if items:
        linked.update(connection.execute(select(service_item_need.c.need_id).where(
            service_item_need.c.service_item_id.in_(sorted(items)))).scalars())
    if linked:
        need = Need.__table__
        ids = sorted(linked)
        for start in range(0, len(ids), 500):
            marks.update(
                (Needs.name, c, f"{clock.to_local(created):%Y-%m}")
                for c, created in connection.execute(
                    select(need.c.community_id, need.c.created_on)
                    .where(need.c.id.in_(ids[start:start + 500]))))
    registrations = MemberRegistration.__table__
    if meetings:
        member, attendance = BodyMember.__table__, Attendance.__table__
        bodies = sorted({b for _, ids in meetings for b in ids})
        ids = sorted({m for m, _ in meetings if m is not None})
        units = select(member.c.unit_id).where(member.c.body_id.in_(bodies))
        if ids:
            units = units.union(select(attendance.c.unit_id).where(
                attendance.c.meeting_id.in_(ids)))
        marks.update((UnitOnes.name, u, "") for u in connection.execute(units).scalars())
    if moved:
        # Their registrations' places (home, grid, work unit, live or not): every month.
        marks.update((name, c, "") for c in connection.execute(
            select(registrations.c.community_id).distinct()
            .where(registrations.c.member_id.in_(sorted(moved)))).scalars()
            for name in (Registrations.name, MonthlyService.name))
    if served:
        member = Member.__table__
        community, _ = ServiceHours.keys()
        ids = sorted({m for m, _ in served})
        found = dict(connection.execute(select(member.c.id, community)
                                        .where(member.c.id.in_(ids))).all())
        marks.update((ServiceHours.name, found[m], month) for m, month in served if m in found)
        # Whether a registered member served in the month: its registrations' communities
        # (one changed in this flush marks itself, every month).
        where_registered = {}
        for m, c in connection.execute(
                select(registrations.c.member_id, registrations.c.community_id)
                .where(registrations.c.member_id.in_(ids),
                       registrations.c.status == MemberRegistrationStatus.REGISTERED,
                       registrations.c.deleted_on.is_(None))):
            where_registered.setdefault(m, set()).add(c)
        marks.update((MonthlyService.name, c, month) for m, month in served
                     for c in where_registered.get(m, ()))
    if marks:
        _known(session).pop("refreshed", None)  # this transaction's reader applies them next
        now = clock.utcnow()
        connection.execute(insert(MARKS), [
            {"rollup": r, "subject": int(s), "period": p, "created_on": now}
            for r, s, p in sorted(marks)])


# --- apply ------------------------------------------------------------------------------------

def _held(connection) -> bool:
    """Hold the apply's lock for this transaction; False when another apply holds it."""
    lock = RollupLock.__table__
    stmt = select(lock.c.id).where(lock.c.id == 1).with_for_update(skip_locked=True)
    if connection.execute(stmt).first() is not None:
        return True
    if connection.execute(select(lock.c.id).where(lock.c.id == 1)).first() is None:
        connection.execute(insert(lock).values(id=1))  # first apply ever (rebuilt database)
        return True
    return False


# A mark for every cell of a rollup (the migration that adds it): the job and `rollups rebuild`
# apply it; a page does not (a city's rebuild is no page's work), and reads the raw rows until.
EVERY_CELL = -1


def apply(connection, limit: int | None = None, whole: bool = True) -> int:
    """Recompute the cells of the oldest `limit` marks (not those for every cell unless `whole`)
    and delete those marks; the number of marks applied (0 when there were none, or another
    apply holds them)."""
    stmt = select(MARKS.c.id, MARKS.c.rollup, MARKS.c.subject, MARKS.c.period)
    if not whole:
        stmt = stmt.where(MARKS.c.subject != EVERY_CELL)
    rows = connection.execute(stmt.order_by(MARKS.c.id).limit(limit)).all()
    if not rows or not _held(connection):
        return 0
    tree = Tree(connection)
    everything = {r for _, r, s, _ in rows if s == EVERY_CELL and r in ROLLUPS}
    for rollup in sorted(everything):
        ROLLUPS[rollup].recompute(connection)
    # Node cells rebuilt whole: a rollup's recomputed whole, or every one's (NODES, EVERY_CELL).
    with_nodes = {name for name, r in ROLLUPS.items() if r.nodes is not None}
    rebuilt = with_nodes if (NODES, EVERY_CELL) in {(r, s) for _, r, s, _ in rows} \
        else everything & with_nodes
    whole_subjects = {(r, s) for _, r, s, p in rows if not p}  # every period of the subject
    cells = {(r, s, "" if (r, s) in whole_subjects else p) for _, r, s, p in rows
             if r in ROLLUPS and r not in everything}
    touched: dict[tuple[str, str], set[int]] = {}  # (rollup, period): communities recomputed
    for rollup, subject, period in sorted(cells):
        follows = rollup in with_nodes and rollup not in rebuilt
        periods = ROLLUPS[rollup].node_periods(connection, subject, period) if follows else ()
        ROLLUPS[rollup].recompute(connection, subject, period or None)
        if follows:
            periods |= ROLLUPS[rollup].node_periods(connection, subject, period)
        for p in periods:
            touched.setdefault((rollup, p), set()).add(subject)
    for rollup in sorted(rebuilt):
        ROLLUPS[rollup].rebuild_nodes(connection, tree)
    for (rollup, period), communities in sorted(touched.items()):
        ROLLUPS[rollup].follow(connection, tree, communities, period)
    moved = sorted({s for _, r, s, _ in rows if r == NODES and s != EVERY_CELL})
    for rollup in sorted(with_nodes - rebuilt):
        for node_id in moved:
            ROLLUPS[rollup].recompute_node(connection, node_id, tree.path(node_id))
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), 1000):
        connection.execute(delete(MARKS).where(MARKS.c.id.in_(ids[start:start + 1000])))
    _stamp(connection)
    return len(ids)


def _stamp(connection) -> None:
    """Set the lock row's `applied_on` — the generation kept boards are served under — to now,
    or a second past the last apply's if that is not earlier: MariaDB keeps it to the second,
    and a second apply in the same second must still read as a new generation."""
    lock = RollupLock.__table__
    now = clock.utcnow().replace(microsecond=0)
    last = connection.execute(select(lock.c.applied_on).where(lock.c.id == 1)).scalar()
    if last is not None and last >= now:
        now = last.replace(microsecond=0) + timedelta(seconds=1)
    connection.execute(lock.update().where(lock.c.id == 1).values(applied_on=now))


def ready(session, name: str) -> bool:
    """Whether rollup `name` may be read: computed (no mark for its every cell is pending) and,
    without a job queue, caught up. A page applies at most PAGE_APPLY_LIMIT marks; what a burst
    of writes left beyond them is read from the raw rows, not shown stale — nothing else would
    catch up before the next page. With a queue, the beat does within a minute, and the board
    says how current it is."""
    # A node's cells are behind while a mark of its subtree's change waits.
    names = [name, NODES] if ROLLUPS[name].nodes is not None else [name]
    stmt = select(MARKS.c.id).where(MARKS.c.rollup.in_(names))
    if queued():
        stmt = stmt.where(MARKS.c.subject == EVERY_CELL)
    with unscoped():
        return session.connection().execute(stmt.limit(1)).first() is None


def queued() -> bool:
    return bool(has_app_context() and current_app.config.get("CELERY_BROKER_URL"))


def refresh(session, limit: int = PAGE_APPLY_LIMIT) -> None:
    """Before a rolled-up figure is read, without a job queue: apply pending marks (bounded) in
    the reader's transaction, so that a write shows on the next page. A failure (another
    process applying the same cells at once) leaves the marks for the next reader."""
    if queued():
        return
    with unscoped():
        try:
            with session.begin_nested():
                apply(session.connection(), limit, whole=False)
        except DBAPIError as exc:
            log.warning("rollups: apply skipped (%s)", exc.__class__.__name__)


def as_of(session) -> datetime:
    """How current the rollups are: the oldest write not yet applied, or now (a rollup not yet
    computed at all is not read: its figures are the raw rows'; nor, without a queue, one that
    is behind)."""
    if not queued():
        return clock.utcnow()
    with unscoped():
        oldest = session.connection().execute(select(func.min(MARKS.c.created_on)).where(
            MARKS.c.subject != EVERY_CELL)).scalar()
    return oldest or clock.utcnow()


# What this transaction has learnt (pending marks applied, rollups ready, nodes' types): asked
# once per page rather than once per figure; forgotten at its end and when it writes marks.
_KNOWN = "rollups_known"


@event.listens_for(Session, "after_transaction_end")
def _forget(session, transaction) -> None:
    if transaction.parent is None:  # the transaction's end, not a savepoint's (refresh's own)
        session.info.pop(_KNOWN, None)


def _known(session) -> dict:
    return session.info.setdefault(_KNOWN, {})


_RAW = "rollups_raw"


@contextmanager
def raw_rows(session):
    """Figures read in the block come from the raw rows: what is frozen for good (a submitted
    monthly report) must not miss a write of the last minute still waiting to be applied."""
    session.info[_RAW] = True
    try:
        yield
    finally:
        session.info.pop(_RAW, None)


def readable(session, name: str) -> bool:
    """Apply what a page may (no queue), then whether rollup `name` can be read."""
    if session.info.get(_RAW):
        return False
    known = _known(session)
    if "refreshed" not in known:
        refresh(session)
        known["refreshed"] = True
    if name not in known:
        known[name] = ready(session, name)
    return known[name]


def pending(connection) -> int:
    return connection.execute(select(func.count()).select_from(MARKS)).scalar()


def rebuild(connection) -> None:
    """Recompute every cell from the raw rows, and forget the marks (they are all applied)."""
    connection.execute(delete(MARKS))
    tree = Tree(connection)
    for rollup in ROLLUPS.values():
        rollup.recompute(connection)
        if rollup.nodes is not None:
            rollup.rebuild_nodes(connection, tree)


def analyze(connection) -> None:
    """The planner's statistics of the rollup tables, once rebuilt (a city's cells are hundreds
    of thousands of rows: PostgreSQL planned them as empty until autovacuum came by)."""
    mysql = connection.dialect.name in ("mysql", "mariadb")
    tables = {r.table.name for r in ROLLUPS.values()}
    tables |= {r.nodes.name for r in ROLLUPS.values() if r.nodes is not None}
    for rollup in sorted(tables):
        statement = f"ANALYZE TABLE {rollup}" if mysql else f"ANALYZE {rollup}"
        connection.exec_driver_sql(statement).close()


def differences(connection) -> Iterator[tuple[str, tuple, tuple | None, tuple | None]]:
    """(rollup, key, stored, computed) for each cell whose stored sums are not the raw rows',
    then each node cell that is not its subtree's cells summed (`<rollup>@node`)."""
    yield from _cell_differences(connection)
    tree = Tree(connection)
    for rollup in ROLLUPS.values():
        if rollup.nodes is None:
            continue
        width = 1 + len(rollup.node_keys)
        kept = {tuple(r[:width]): tuple(r[width:])
                for r in connection.execute(select(rollup.nodes))}
        for node_id, path in tree.nodes():
            for row in connection.execute(rollup.node_rows(node_id, path)):
                key, values = tuple(row[:width]), tuple(row[width:])
                found = kept.pop(key, None)
                if found is None or not _same(found, values):
                    yield f"{rollup.name}@node", key, found, values
        for key, found in kept.items():
            yield f"{rollup.name}@node", key, found, None


def _cell_differences(connection):
    for rollup in ROLLUPS.values():
        keys = list(rollup.table.primary_key.columns)
        width = len(keys)
        stored = select(rollup.table).where(rollup.cells()).order_by(*keys)
        if not rollup.large:
            kept = {tuple(r[:width]): tuple(r[width:]) for r in connection.execute(stored)}
            for row in rollup.rows(connection):
                key, values = tuple(row[:width]), tuple(row[width:])
                found = kept.pop(key, None)
                if found is None or not _same(found, values):
                    yield rollup.name, key, found, values
            for key, found in kept.items():
                yield rollup.name, key, found, None
            continue
        # Both sides in key order, merged: the city's balances do not fit in memory.
        options = {"stream_results": True, "yield_per": 5000} if _streams(connection) else {}
        kept = iter(connection.execute(stored.execution_options(**options)))
        made = iter(rollup.rows(connection))
        old, new = next(kept, None), next(made, None)
        while old is not None or new is not None:
            k1 = tuple(old[:width]) if old is not None else None
            k2 = tuple(new[:width]) if new is not None else None
            if k2 is None or (k1 is not None and k1 < k2):
                yield rollup.name, k1, tuple(old[width:]), None
                old = next(kept, None)
            elif k1 is None or k2 < k1:
                yield rollup.name, k2, None, tuple(new[width:])
                new = next(made, None)
            else:
                if not _same(tuple(old[width:]), tuple(new[width:])):
                    yield rollup.name, k1, tuple(old[width:]), tuple(new[width:])
                old, new = next(kept, None), next(made, None)


def _same(a: tuple, b: tuple) -> bool:
    return all(round(Decimal(str(x or 0)), 2) == round(Decimal(str(y or 0)), 2)
               for x, y in zip(a, b, strict=True))


# --- reading: which viewers' figures the cells can give -----------------------------------------

class _InArray(ColumnElement):
    """`column IN (subquery)`, on PostgreSQL `column = ANY(ARRAY(subquery))`: the same rows,
    but the planner knows the subquery is run once into a list, and reads the outer rows by
    the column's index — see `as_arrays`."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("binary", InternalTraversal.dp_clauseelement)]

    def __init__(self, binary):
        self.binary = binary


@compiles(_InArray)
def _in_array_default(element, compiler, **kw):
    return compiler.process(element.binary, **kw)


@compiles(_InArray, "postgresql")
def _in_array_postgresql(element, compiler, **kw):
    left = compiler.process(element.binary.left, **kw)
    return f"{left} = ANY(ARRAY({compiler.process(element.binary.right, **kw)}))"


def as_arrays(session, clause):
    """Every `column IN (subquery)` in `clause`, its subqueries' own included, as `_InArray`:
    on PostgreSQL a placing under a node (`IN (SELECT id FROM organization WHERE path LIKE …)`,
    and the rows placed by it) was answered by scanning the whole table and testing each row
    against hashed subplans — a community's registration counts scanned the 740,000 cells of
    the city (120 ms), the point ledger's figures every entry of the period (1–2 s); as nested
    arrays it reads the node's rows by their community's index. Elsewhere `clause` itself: a
    copy made SQLite plan the point ledger's node figures three times slower (0.06 → 0.18 s)."""
    if session.get_bind().dialect.name != "postgresql":
        return clause

    def replace(element):
        if isinstance(element, BinaryExpression) and element.operator is operators.in_op \
                and isinstance(getattr(element.right, "element", element.right), SelectBase):
            inner = replacement_traverse(element.right, {}, replace)
            return _InArray(BinaryExpression(element.left, inner, operators.in_op))
        return None
    return replacement_traverse(clause, {}, replace)


def _nodes_at_or_above_community(session, paths, types=ROLLED_NODES) -> bool:
    """Whether the nodes at `paths` are all of `types` (by default: at or above a community)."""
    known = _known(session).setdefault("rolled_nodes", {})
    if (paths, types) not in known:
        org = Organization.__table__
        found = session.connection().execute(
            select(org.c.type).where(org.c.path.in_(paths))).scalars().all()
        known[(paths, types)] = len(found) == len(paths) and all(t in types for t in found)
    return known[(paths, types)]


def cells_where(session, table, node_path: str | None, placed_by=("community_id",),
                placed=None, home=None):
    """The cells of `table` (placed by the nodes in its `placed_by` columns — community_id, and
    home_id too for a second place, or a joint body's host_id — and keyed by unit_id) that the
    viewer's figure sums — the rows the raw query would read through the raw rows'
    scope declarations (their community or grid, their unit) under the node at `node_path` —
    or None when the scope cannot be put on the cells' keys (a grid secretary, a member, a
    node below a community, several kinds of grant at once). `placed(nodes)`: a placing rule
    of its own instead; `home`: a member's home column that a street's or community's viewer
    also holds to its subtree (the raw query joins the member, whose own scope applies)."""
    from app.security.scope import subtree_ids

    principal = current_principal()

    def placed_under(paths):
        nodes = subtree_ids(paths)
        if placed is not None:
            return placed(nodes)
        return or_(*[table.c[column].in_(nodes) for column in placed_by])

    where = []
    if node_path is not None:
        if not _nodes_at_or_above_community(session, (node_path,)):
            return None
        where.append(placed_under((node_path,)))
    if principal.sees_all:
        pass
    elif principal.org_paths and not principal.unit_ids and not principal.member_ids:
        # A member's grid lies in its home community (models.org.Member.validate): a subtree
        # at or above communities holds the member by its community alone.
        if not _nodes_at_or_above_community(session, tuple(principal.org_paths)):
            return None
        where.append(placed_under(principal.org_paths))
        if home is not None:
            where.append(home.in_(subtree_ids(tuple(principal.org_paths))))
    elif principal.unit_ids and not principal.org_paths and not principal.member_ids \
            and "unit_id" in table.c:
        where.append(table.c.unit_id.in_(principal.unit_ids))
    else:
        return None
    return and_(true(), *where)


def _viewer_nodes(session, node_path: str | None, placed_twice: bool) -> list[int] | None:
    """The nodes whose cells sum to the viewer's figure under the chosen node: node 0 for all
    data; else the chosen node, or the viewer's own nodes within it — None where that is not
    nodes above a community (a community: its community cells; a unit's liaison, a grid, a
    member), or where several nodes would count a cell placed twice (`placed_twice`) twice."""
    principal = current_principal()
    if principal.sees_all:
        paths = [node_path] if node_path is not None else []
    elif principal.org_paths and not principal.unit_ids and not principal.member_ids:
        own = [p for p in principal.org_paths
               if not any(p != q and p.startswith(q) for q in principal.org_paths)]
        if node_path is None:
            paths = own
        elif any(node_path.startswith(p) for p in own):
            paths = [node_path]
        else:
            paths = [p for p in own if p.startswith(node_path)]
        if not paths or (placed_twice and len(paths) > 1):
            return None
    else:
        return None
    if not paths:
        return [ALL_DATA]
    if not _nodes_at_or_above_community(session, tuple(sorted(set(paths))), NODE_TYPES):
        return None
    return sorted({_segments(p)[-1] for p in paths})


def cells(session, name: str, node_path: str | None):
    """(table, where): the cells of rollup `name` that the viewer's figure under the node at
    `node_path` sums — one node's cells where a node holds it (all data: node 0's), else the
    community cells that `cells_where` can select — or None: read the raw rows."""
    rollup = ROLLUPS[name]
    if rollup.nodes is not None:
        nodes = _viewer_nodes(session, node_path, len(rollup.placed_by) > 1)
        if nodes is not None:
            t = rollup.nodes
            return t, (t.c.node_id == nodes[0] if len(nodes) == 1 else t.c.node_id.in_(nodes))
    where = rollup.viewer_where(session, node_path)
    return None if where is None else (rollup.table, as_arrays(session, where))


def sees_all() -> bool:
    """Whether the viewer's scope filters nothing (组织部, the auditor): cells keyed by unit
    alone (`UnitOnes`) say nothing of where the meetings and needs they count sit, which a
    narrower scope would filter them by; such a viewer reads the raw rows."""
    return current_principal().sees_all


def whole_ledger(node_path: str | None) -> bool:
    """Whether the viewer's leaderboard is the whole ledger's (who sees all, no node chosen):
    a subject's balance is then its rank key. Under a node, an entry is placed by its subject's
    community or by the community that booked it, which a subject's balance does not say."""
    return node_path is None and current_principal().sees_all


# --- what a kept copy of the board stays valid for ------------------------------------------------

def generation(session) -> tuple[bool, tuple]:
    """(whether a board kept from before may be served, the generation to keep this page's board
    under) — for the rendered board's cache (app/dashboards/board_cache.py). The rolled figures
    change only when an apply recomputes cells, which sets the lock row's `applied_on`. With a
    queue that is the generation: a write waits for the job, and the board says how current it
    is (each apply's stamp is later than the last one's: `_stamp`). Without one, the page
    applies pending marks first (as `readable` would): a page that finds some reads afresh — a
    copy kept before those writes must not be served — and
    marks still pending after its bounded apply (figures read raw) are part of the generation,
    so that the next write is a new one."""
    cell_marks = select(func.max(MARKS.c.id)).where(MARKS.c.subject != EVERY_CELL)
    lock = RollupLock.__table__
    with unscoped():
        connection = session.connection()
        if queued():
            return True, (connection.execute(
                select(lock.c.applied_on).where(lock.c.id == 1)).scalar(),)
        before = connection.execute(cell_marks).scalar()
        known = _known(session)
        if "refreshed" not in known:
            refresh(session)
            known["refreshed"] = True
        connection = session.connection()
        applied = connection.execute(select(lock.c.applied_on).where(lock.c.id == 1)).scalar()
        return before is None, (applied, connection.execute(cell_marks).scalar())
