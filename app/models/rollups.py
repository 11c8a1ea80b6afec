"""Rollups (issue 29): sums and counts the dashboard reads instead of scanning the raw rows, and
the change log that keeps them current (app/rollups.py). Not business data: no scope of their
own — who may see which cell is decided by app/rollups.py from the cell's keys, as the raw
rows' scope declarations would."""
from __future__ import annotations

from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, Index, Integer, Numeric, String


class RollupMark(Model):
    """One change log row: the cell (`subject`, `period`) of rollup `rollup` needs recomputing.
    Written in the transaction of the write that changed its raw rows; deleted by the apply
    that recomputed it. An empty `period` stands for every period of the subject."""

    __tablename__ = "rollup_mark"

    id = Column(Integer, primary_key=True)
    rollup = Column(String(16), nullable=False)
    subject = Column(Integer, nullable=False)
    period = Column(String(8), nullable=False, default="")
    created_on = Column(DateTime, nullable=False)


class RollupLock(Model):
    """One row per rollup set that an apply holds (SELECT … FOR UPDATE SKIP LOCKED) while it
    recomputes: two appliers at once (the beat and a page, two pages) do not both rewrite the
    same cells; the second finds it held and leaves the marks to the first or to the next."""

    __tablename__ = "rollup_lock"

    id = Column(Integer, primary_key=True, autoincrement=False)
    applied_on = Column(DateTime, nullable=True)


class ServiceHoursCell(Model):
    """Certified service hours and records per (community, work unit, month of service): the
    member's home community and work unit while the member is live, 0 once deleted (the raw
    figure counts a deleted member's records in the whole city, under no node)."""

    __tablename__ = "rollup_service_hours"
    __table_args__ = (Index("ix_rollup_service_hours_month", "year", "month", "community_id"),)

    community_id = Column(Integer, primary_key=True, autoincrement=False)
    unit_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    hours = Column(Numeric(14, 1), nullable=False)
    records = Column(Integer, nullable=False)


class PointBalance(Model):
    """A subject's (member's or unit's) net points and entries in a ledger period: one row per
    quarter it has entries in (2026Q3) and one for the year (2026: its four quarters). The
    leaderboard is the first rows of the (subject type, period, points) index."""

    __tablename__ = "rollup_point_balance"
    __table_args__ = (Index("ix_rollup_point_balance_rank", "subject_type", "period",
                            "points", "subject_id"),)

    subject_type = Column(String(8), primary_key=True)
    subject_id = Column(Integer, primary_key=True, autoincrement=False)
    period = Column(String(8), primary_key=True)
    points = Column(Numeric(14, 2), nullable=False)
    entries = Column(Integer, nullable=False)


class PointsPaidCell(Model):
    """The whole ledger's entries written in a month (in the zone's calendar), by subject type
    and kind: how many, and their net points — 积分发放 of all data by the entry's time."""

    __tablename__ = "rollup_points_paid"

    subject_type = Column(String(8), primary_key=True)
    kind = Column(String(8), primary_key=True)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    entries = Column(Integer, nullable=False)
    points = Column(Numeric(14, 2), nullable=False)


class RegistrationCount(Model):
    """双报到's counts per community: units in the register and members in service (`kind`
    unit / member, as they stand: year and month 0), and registrations confirmed (unit_reg /
    member_reg) by month of registration. A member's registration is also placed by the
    member's grid (`home_id`: the member's home community while it has a grid and is live, else
    0), and each row by its unit (a unit's own id, its work unit for members; 0: none)."""

    __tablename__ = "rollup_registration"
    # A community's cells, by either place: its own figures, and its node cells' recompute.
    __table_args__ = (Index("ix_rollup_registration_community", "community_id"),
                      Index("ix_rollup_registration_home", "home_id"))

    kind = Column(String(12), primary_key=True)
    community_id = Column(Integer, primary_key=True, autoincrement=False)
    home_id = Column(Integer, primary_key=True, autoincrement=False)
    unit_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    count = Column(Integer, nullable=False)


class NeedCount(Model):
    """需求清单's counts per community, month (in the zone's calendar), category and status:
    `kind` raised — the needs raised (群众接单) in the month, with what their figures average
    (办结 with its time from intake, 按期, 回访 with its satisfaction, 匹配: a service item
    linked or a resource confirmed, `Need.matched`) — and closed — the needs closed (已办结 or
    已回访) in the month, by the day of 办结."""

    __tablename__ = "rollup_need"

    community_id = Column(Integer, primary_key=True, autoincrement=False)
    kind = Column(String(8), primary_key=True)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    category_id = Column(Integer, primary_key=True, autoincrement=False)
    status = Column(String(8), primary_key=True)
    count = Column(Integer, nullable=False)
    timed = Column(Integer, nullable=False)
    seconds = Column(Numeric(20, 3), nullable=False)
    on_time = Column(Integer, nullable=False)
    rated = Column(Integer, nullable=False)
    scored = Column(Integer, nullable=False)
    satisfaction = Column(Integer, nullable=False)
    matched = Column(Integer, nullable=False)


# --- node cells: a rollup's sums at each node at or above a community (node 0: all data) ----------

class ServiceHoursNode(Model):
    """`ServiceHoursCell`'s hours and records of the communities under a node, per month."""

    __tablename__ = "rollup_node_service_hours"

    node_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    hours = Column(Numeric(14, 1), nullable=False)
    records = Column(Integer, nullable=False)


class RegistrationNode(Model):
    """`RegistrationCount`'s counts placed under a node — by their community or their second
    place (home_id), counted once — per community (the figure's rows), kind and month."""

    __tablename__ = "rollup_node_registration"
    __table_args__ = (Index("ix_rollup_node_registration_community", "community_id"),)

    node_id = Column(Integer, primary_key=True, autoincrement=False)
    kind = Column(String(12), primary_key=True)
    community_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    count = Column(Integer, nullable=False)


class NeedNode(Model):
    """`NeedCount`'s counts of the communities under a node."""

    __tablename__ = "rollup_node_need"

    node_id = Column(Integer, primary_key=True, autoincrement=False)
    kind = Column(String(8), primary_key=True)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    category_id = Column(Integer, primary_key=True, autoincrement=False)
    status = Column(String(8), primary_key=True)
    count = Column(Integer, nullable=False)
    timed = Column(Integer, nullable=False)
    seconds = Column(Numeric(20, 3), nullable=False)
    on_time = Column(Integer, nullable=False)
    rated = Column(Integer, nullable=False)
    scored = Column(Integer, nullable=False)
    satisfaction = Column(Integer, nullable=False)
    matched = Column(Integer, nullable=False)


class MonthlyServiceCell(Model):
    """双报到's monthly service (已报到党员本月服务) per registration community, the member's
    home community, whether it has a grid (`grouped`), and its work unit (0: none): `members`
    registered (已报到, live registration of a live member) as they stand (year and month 0),
    and, per month, how many of them have a service record dated in it that was not refused.
    The member's home and grid are kept because the raw figure joins the member, whose own
    scope places it there (app/rollups.py MonthlyService)."""

    __tablename__ = "rollup_monthly_service"
    # 组织部's board reads one month's and the standing rows of every community: the index
    # holds every column it reads. The home index places a cell by the member's community.
    __table_args__ = (Index("ix_rollup_monthly_service_month", "year", "month", "community_id",
                            "unit_id", "home_id", "grouped", "members"),
                      Index("ix_rollup_monthly_service_home", "home_id"))

    community_id = Column(Integer, primary_key=True, autoincrement=False)
    home_id = Column(Integer, primary_key=True, autoincrement=False)
    grouped = Column(Integer, primary_key=True, autoincrement=False)
    unit_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    members = Column(Integer, nullable=False)
class UnitOnesCell(Model):
    """A unit's 三个一 counts in a year (services.cobuild.AgreementOnes): the quarters in which a
    joint body it sits on held a meeting, of those the quarters it attended one (出席, 迟到), and
    the needs it closed (已办结 or 已回访, by the day of 办结 in the zone's calendar). Keyed by
    the unit alone: they count its rows wherever they sit, as the figure does for who sees all."""

    __tablename__ = "rollup_unit_ones"

    unit_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    quarters_held = Column(Integer, nullable=False)
    quarters_attended = Column(Integer, nullable=False)
    needs_closed = Column(Integer, nullable=False)


class MemberGroupCell(Model):
    """The live members per community and 所在网格 (a grid or a node below it): how many, their
    红色网格员 and 党员中心户 — as they stand (各网格党员 credits each to the grids above it)."""

    __tablename__ = "rollup_member_group"

    community_id = Column(Integer, primary_key=True, autoincrement=False)
    group_id = Column(Integer, primary_key=True, autoincrement=False)
    members = Column(Integer, nullable=False)
    red = Column(Integer, nullable=False)
    household = Column(Integer, nullable=False)


class NeedCommunityCell(Model):
    """需求清单 raised per community and month (in the zone's calendar), and of them those
    closed (已办结 or 已回访) and those open at a step (待受理, 已受理, 已派单, 办理中) — 各社区需求办理's
    first two columns, and what its third, overdue now, is counted from: the open ones less
    those not yet late, which depend on the clock and are counted live."""

    __tablename__ = "rollup_need_community"

    community_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    raised = Column(Integer, nullable=False)
    closed = Column(Integer, nullable=False)
    open = Column(Integer, nullable=False)


class AttendanceCell(Model):
    """参会记录 of the meetings held per (host of the meeting's joint body, meeting type, month
    held): the records, those present (出席, 迟到), and of those the ones below the level the
    body requires for the type (参会职级不达标) — 参会率 and 参会职级."""

    __tablename__ = "rollup_attendance"
    __table_args__ = (Index("ix_rollup_attendance_month", "year", "month", "host_id"),)

    host_id = Column(Integer, primary_key=True, autoincrement=False)
    type = Column(String(8), primary_key=True)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    records = Column(Integer, nullable=False)
    present = Column(Integer, nullable=False)
    below = Column(Integer, nullable=False)


class AttendanceNode(Model):
    """`AttendanceCell`'s counts of the hosts under a node."""

    __tablename__ = "rollup_node_attendance"

    node_id = Column(Integer, primary_key=True, autoincrement=False)
    type = Column(String(8), primary_key=True)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    records = Column(Integer, nullable=False)
    present = Column(Integer, nullable=False)
    below = Column(Integer, nullable=False)


class ResolutionCell(Model):
    """议定事项 per (host of its meeting's joint body, month of its deadline): how many, those
    closed (已办结), and of those the ones closed by the deadline — 议定事项办理 but its
    overdue column, which depends on the day and is counted live."""

    __tablename__ = "rollup_resolution"
    __table_args__ = (Index("ix_rollup_resolution_month", "year", "month", "host_id"),)

    host_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    total = Column(Integer, nullable=False)
    closed = Column(Integer, nullable=False)
    on_time = Column(Integer, nullable=False)


class ResolutionNode(Model):
    """`ResolutionCell`'s counts of the hosts under a node."""

    __tablename__ = "rollup_node_resolution"

    node_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    total = Column(Integer, nullable=False)
    closed = Column(Integer, nullable=False)
    on_time = Column(Integer, nullable=False)


class WishCell(Model):
    """微心愿 per community and month (in the zone's calendar): posted (by its 登记 instant),
    claimed and fulfilled (each by the instant of its step), and of those posted the ones
    published (待认领 or beyond) and, of these, claimed — 微心愿月度情况 and 认领率."""

    __tablename__ = "rollup_wish"
    __table_args__ = (Index("ix_rollup_wish_month", "year", "month", "community_id"),)

    community_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    posted = Column(Integer, nullable=False)
    claimed = Column(Integer, nullable=False)
    fulfilled = Column(Integer, nullable=False)
    published = Column(Integer, nullable=False)
    published_claimed = Column(Integer, nullable=False)


class WishNode(Model):
    """`WishCell`'s counts of the communities under a node."""

    __tablename__ = "rollup_node_wish"

    node_id = Column(Integer, primary_key=True, autoincrement=False)
    year = Column(Integer, primary_key=True, autoincrement=False)
    month = Column(Integer, primary_key=True, autoincrement=False)
    posted = Column(Integer, nullable=False)
    claimed = Column(Integer, nullable=False)
    fulfilled = Column(Integer, nullable=False)
    published = Column(Integer, nullable=False)
    published_claimed = Column(Integer, nullable=False)
