"""Joint meetings (联席会议): joint bodies of a Party organisation and its resident units, their
meetings on a cadence, attendance, agenda items, resolutions and their supervision (督办)
(DOMAIN.md §1, §2).

Everything here sits where the body's host organisation sits: a meeting and its children are
placed by a correlated subquery up to `joint_body.host_id`. A liaison sees the bodies its unit
belongs to (through `body_member`) and their meetings; resolutions its unit leads or co-leads,
and their supervision notes. The lead unit's liaison writes its progress reports itself: such a
note carries the reporting unit (`unit_id`), which puts it in the liaison's own scope, while the
host's supervision notes carry none and stay the host's.
"""
from __future__ import annotations

from calendar import monthrange
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    and_,
    case,
    select,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import relationship
from sqlalchemy.orm.attributes import get_history

from app import clock
from app.errors import DomainError
from app.i18n import N_
from app.minutes import render_minutes
from app.models.base import (
    Entity,
    Scope,
    caption,
    live_index,
    live_order,
    state_choices,
    status_is_version,
)
from app.models.org import Organization, Unit, UnitStatus
from app.models.supervision import (
    ProgressNote,
    Supervised,
    TaskStatus,
    co_unit_rule,
    co_unit_table,
    tasks_of_units,
)

# Host organisation type -> the body's level (DOMAIN.md: 区/街道/社区).
LEVEL_OF_HOST = {"district": "区", "street": "街道", "community": "社区"}
BODY_LEVELS = {"区": N_("区"), "街道": N_("街道"), "社区": N_("社区")}
MEMBER_ROLES = {s: N_(s) for s in ("召集人", "副召集人", "成员单位", "兼职委员")}
MEETING_TYPES = {s: N_(s) for s in ("旬例会", "月推进会", "季研讨会", "年总结会", "临时会议")}
class MeetingStatus(StrEnum):
    """The states of a joint meeting; the values are what the database stores."""

    PLANNED = "计划中"
    HELD = "已召开"
    CANCELLED = "已取消"


# A resolution is a supervised task (app/models/supervision.py): its states are the task's.
ResolutionStatus = TaskStatus


MEETING_STATUSES = state_choices(MeetingStatus)
ATTENDEE_LEVELS = {s: N_(s) for s in ("一把手", "分管领导", "党务干部", "其他")}
# Higher first: an attendee meets a meeting's required level when its rank is not below it.
LEVEL_RANK = {level: rank for rank, level in enumerate(ATTENDEE_LEVELS, start=1)}
# Each type's required attendee level, a column of its body (临时会议: none).
REQUIRED_LEVEL_COLUMN = {"旬例会": "xun_level", "月推进会": "monthly_level",
                         "季研讨会": "quarterly_level", "年总结会": "yearly_level"}
ATTENDANCE_STATUSES = {s: N_(s) for s in ("出席", "迟到", "请假", "缺席")}
PRESENT = ("出席", "迟到")
RESOLUTION_STATUSES = state_choices(ResolutionStatus)
DONE = ResolutionStatus.DONE

resolution_co_unit = co_unit_table("resolution")


# --- where rows sit: correlated subqueries on Core tables (scope criteria stay out of them) --

def _host_of_body(body_id):
    body = JointBody.__table__
    return select(body.c.host_id).where(body.c.id == body_id).scalar_subquery()


def _host_of_meeting(meeting_id):
    body, meeting = JointBody.__table__, Meeting.__table__
    return (select(body.c.host_id).select_from(meeting.join(body, body.c.id == meeting.c.body_id))
            .where(meeting.c.id == meeting_id).scalar_subquery())


def _host_of_resolution(resolution_id):
    body, meeting, res = JointBody.__table__, Meeting.__table__, Resolution.__table__
    return (select(body.c.host_id)
            .select_from(res.join(meeting, meeting.c.id == res.c.meeting_id)
                         .join(body, body.c.id == meeting.c.body_id))
            .where(res.c.id == resolution_id).scalar_subquery())


def bodies_of_units(unit_ids):
    """The bodies the units belong to (live memberships)."""
    member = BodyMember.__table__
    return select(member.c.body_id).where(member.c.unit_id.in_(unit_ids),
                                          member.c.deleted_on.is_(None))


def _meetings_of_units(unit_ids):
    meeting = Meeting.__table__
    return select(meeting.c.id).where(meeting.c.body_id.in_(bodies_of_units(unit_ids)))


def _resolutions_of_units(unit_ids):
    """Resolutions the units lead or co-lead."""
    return tasks_of_units(Resolution, resolution_co_unit, unit_ids)


def _in_member_bodies(column):
    """A `shared` rule: rows of the bodies one's unit belongs to (read only)."""
    return lambda p: column().in_(bodies_of_units(p.unit_ids)) if p.unit_ids else None


def _of_member_meetings(column):
    return lambda p: column().in_(_meetings_of_units(p.unit_ids)) if p.unit_ids else None


# The cadence of DOMAIN.md §2: 旬例会 on the 1st, 11th and 21st, 月推进会 on the 25th, 季研讨会 on
# the 25th of a quarter's last month, 年总结会 on 20 December.
CADENCE_DEFAULTS = {
    "xun_enabled": True, "xun_days": "1,11,21", "monthly_enabled": True, "monthly_day": 25,
    "quarterly_enabled": True, "quarterly_day": 25, "yearly_enabled": True, "yearly_month": 12,
    "yearly_day": 20,
    # The level each unit sends at least (the practice: the Party-affairs officer to the 旬例会,
    # the leader in charge to the 月推进会, the 一把手 in person to the quarterly and yearly ones).
    "xun_level": "党务干部", "monthly_level": "分管领导", "quarterly_level": "一把手",
    "yearly_level": "一把手",
}


def level_rank(level):
    """LEVEL_RANK in SQL (the hybrid, the meeting figures and their rollup compare by it); no
    level ranks below every level."""
    return case(*((level == name, rank) for name, rank in LEVEL_RANK.items()),
                else_=len(LEVEL_RANK) + 1)


# --- the models ------------------------------------------------------------------------------

class JointBody(Entity):
    __tablename__ = "joint_body"
    __table_args__ = live_order("joint_body", "name", "level", "changed_on")
    __label__ = N_("联席会")
    __scope__ = Scope(org=(lambda: JointBody.host_id,),
                      shared=(_in_member_bodies(lambda: JointBody.id),))
    __choices__ = {"host": lambda: Organization.type.in_(tuple(LEVEL_OF_HOST))}

    name = Column(String(100), nullable=False, index=True, info=caption("联席会名称"))
    level = Column(String(4), nullable=False, default="社区", index=True,
                   info=caption("层级", choices=BODY_LEVELS))
    host_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                     info=caption("主办党组织"))
    description = Column(Text, info=caption("简介"))
    # The cadence (DOMAIN.md §2), configurable per body; each type may be switched off.
    xun_enabled = Column(Boolean, nullable=False, default=True, info=caption("召开旬例会"))
    xun_days = Column(String(32), nullable=False, default=CADENCE_DEFAULTS["xun_days"],
                      info=caption("旬例会日期（每月几日，逗号分隔）"))
    monthly_enabled = Column(Boolean, nullable=False, default=True, info=caption("召开月推进会"))
    monthly_day = Column(Integer, nullable=False, default=CADENCE_DEFAULTS["monthly_day"],
                         info=caption("月推进会日期（每月几日）"))
    quarterly_enabled = Column(Boolean, nullable=False, default=True, info=caption("召开季研讨会"))
    quarterly_day = Column(Integer, nullable=False, default=CADENCE_DEFAULTS["quarterly_day"],
                           info=caption("季研讨会日期（季末月几日）"))
    yearly_enabled = Column(Boolean, nullable=False, default=True, info=caption("召开年总结会"))
    yearly_month = Column(Integer, nullable=False, default=CADENCE_DEFAULTS["yearly_month"],
                          info=caption("年总结会月份"))
    yearly_day = Column(Integer, nullable=False, default=CADENCE_DEFAULTS["yearly_day"],
                        info=caption("年总结会日期"))
    xun_level = Column(String(8), nullable=False, default=CADENCE_DEFAULTS["xun_level"],
                       info=caption("旬例会参会职级要求", choices=ATTENDEE_LEVELS))
    monthly_level = Column(String(8), nullable=False, default=CADENCE_DEFAULTS["monthly_level"],
                           info=caption("月推进会参会职级要求", choices=ATTENDEE_LEVELS))
    quarterly_level = Column(String(8), nullable=False,
                             default=CADENCE_DEFAULTS["quarterly_level"],
                             info=caption("季研讨会参会职级要求", choices=ATTENDEE_LEVELS))
    yearly_level = Column(String(8), nullable=False, default=CADENCE_DEFAULTS["yearly_level"],
                          info=caption("年总结会参会职级要求", choices=ATTENDEE_LEVELS))

    host = relationship("Organization", info=caption("主办党组织"))
    members = relationship("BodyMember", back_populates="body", order_by="BodyMember.id",
                           info=caption("成员单位"))

    def validate(self, session) -> None:
        host = self.host
        if host is None:
            raise DomainError("请选择主办党组织", "host")
        if host.type not in LEVEL_OF_HOST:
            raise DomainError("主办党组织须是区委、街道党工委或社区党组织", "host")
        self.level = LEVEL_OF_HOST[host.type]
        for key, default in CADENCE_DEFAULTS.items():  # column defaults come only at the insert
            if getattr(self, key) is None:
                setattr(self, key, default)
        self.xun_days = ",".join(str(d) for d in self.xun_day_list())
        for value, label in ((self.monthly_day, "月推进会日期"), (self.quarterly_day, "季研讨会日期"),
                             (self.yearly_day, "年总结会日期")):
            if value is None or not 1 <= value <= 31:
                raise DomainError(f"{label}应为1到31之间的整数", "monthly_day")
        if self.yearly_month is None or not 1 <= self.yearly_month <= 12:
            raise DomainError("年总结会月份应为1到12之间的整数", "yearly_month")
        if self.yearly_day > monthrange(2000, self.yearly_month)[1]:  # 2000: Feb has 29 days
            raise DomainError(f"{self.yearly_month}月没有{self.yearly_day}日", "yearly_day")
        for type_, column in REQUIRED_LEVEL_COLUMN.items():
            if getattr(self, column) not in ATTENDEE_LEVELS:
                raise DomainError(f"{type_}参会职级要求应为：{'、'.join(ATTENDEE_LEVELS)}", column)
        if self.id is not None and _changed(self, "host_id"):
            outside = [m.unit.name for m in self.members
                       if not m.unit.community.path.startswith(host.path)]
            if outside:
                raise DomainError(f"成员单位“{'、'.join(outside)}”不在“{host.name}”辖区内，"
                                  "不能改由该党组织主办", "host")

    def required_level(self, meeting_type: str) -> str | None:
        column = REQUIRED_LEVEL_COLUMN.get(meeting_type)
        return getattr(self, column) if column else None

    def xun_day_list(self) -> list[int]:
        """The days of the month of the 旬例会, e.g. [1, 11, 21]."""
        raw = (self.xun_days or "").replace("，", ",").replace("、", ",").replace(" ", "")
        try:
            days = sorted({int(part) for part in raw.split(",") if part})
        except ValueError:
            days = []
        if not days or any(not 1 <= d <= 31 for d in days):
            raise DomainError("旬例会日期应为1到31之间的日期，用逗号分隔，如 1,11,21", "xun_days")
        return days

    def check_delete(self, session) -> None:
        if _exists(session, select(Meeting.id).where(Meeting.body_id == self.id,
                                                     Meeting.deleted_on.is_(None))):
            raise DomainError(f"“{self.name}”已有会议记录，不能删除")

    __caption__ = "name"


class BodyMember(Entity):
    __tablename__ = "body_member"
    __table_args__ = live_order("body_member", "role") + (
        live_index("body_member", "body", "body_id", "unit_id", "deleted_on"),)
    __label__ = N_("成员单位")
    __scope__ = Scope(org=(lambda: _host_of_body(BodyMember.body_id),),
                      shared=(_in_member_bodies(lambda: BodyMember.body_id),))
    __choices__ = {"unit": lambda: Unit.status == UnitStatus.REGISTERED}

    body_id = Column(Integer, ForeignKey("joint_body.id"), nullable=False, index=True,
                     info=caption("联席会"))
    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=False, index=True,
                     info=caption("成员单位"))
    role = Column(String(8), index=True, nullable=False, default="成员单位",
                  info=caption("角色", choices=MEMBER_ROLES))
    representative = Column(String(50), info=caption("参会代表"))
    representative_title = Column(String(50), info=caption("代表职务"))
    # One live membership per unit and body: NULL once deleted (MariaDB has no partial index).
    member_key = Column(String(24), nullable=True, unique=True)

    body = relationship("JointBody", back_populates="members", info=caption("联席会"))
    unit = relationship("Unit", info=caption("成员单位"))

    def validate(self, session) -> None:
        if self.body is None:
            raise DomainError("请选择联席会", "body")
        if self.unit is None:
            raise DomainError("请选择成员单位", "unit")
        host = self.body.host
        if not self.unit.community.path.startswith(host.path):
            raise DomainError(f"“{self.unit.name}”不在“{host.name}”辖区内，不能加入该联席会", "unit")
        self.member_key = f"{self.body.id}:{self.unit.id}" if self.body.id else None
        if self.member_key and _exists(session, select(BodyMember.id).where(
                BodyMember.member_key == self.member_key, BodyMember.id != (self.id or 0))):
            raise DomainError(f"“{self.unit.name}”已是该联席会的成员单位", "unit")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.member_key = None

    def restore(self):
        super().restore()
        self.member_key = f"{self.body_id}:{self.unit_id}"

    def __str__(self) -> str:
        return str(self.unit) if self.unit is not None else super().__str__()


class Meeting(Entity):
    __tablename__ = "meeting"
    __table_args__ = live_order("meeting", "planned_date", "type", "status", "held_on") + (
        # The dashboard's meetings planned and held per type, under a node by their body.
        live_index("meeting", "planned", "planned_date", "type", "status", "body_id", "deleted_on"),
        live_index("meeting", "held", "status", "type", "held_on", "body_id", "deleted_on"))
    __label__ = N_("会议")
    __list_loads__ = ("body",)  # its heading, and its attendances' required level, read it
    __scope__ = Scope(org=(lambda: _host_of_body(Meeting.body_id),),
                      shared=(_in_member_bodies(lambda: Meeting.body_id),))
    __extra_labels__ = {"heading": N_("会议"), "minutes_html": N_("会议纪要")}
    # The list opens on the next meeting: those to come, soonest first, then those past, latest
    # first (a list ordered by date alone opens months ahead or years back).
    __orders__ = {"coming_first": lambda: (
        case((Meeting.planned_date >= clock.today(), 0), else_=1),
        case((Meeting.planned_date >= clock.today(), Meeting.planned_date)),
        Meeting.planned_date.desc(), Meeting.id.desc())}

    body_id = Column(Integer, ForeignKey("joint_body.id"), nullable=False, index=True,
                     info=caption("联席会"))
    type = Column(String(8), nullable=False, index=True,
                  info=caption("会议类型", choices=MEETING_TYPES))
    planned_date = Column(Date, nullable=False, index=True, info=caption("计划日期"))
    held_on = Column(Date, nullable=True, index=True, info=caption("召开日期"))
    place = Column(String(200), info=caption("会议地点"))
    chair = Column(String(50), info=caption("主持人"))
    recorder = Column(String(50), info=caption("记录人"))
    status = Column(String(8), nullable=False, default=MeetingStatus.PLANNED, index=True,
                    info=caption("状态", choices=MEETING_STATUSES))
    __mapper_args__ = status_is_version(status)
    minutes = Column(Text, info=caption("会议纪要"))
    cancel_reason = Column(String(500), info=caption("取消原因"))
    # One live meeting per body, type and date (generating twice creates no duplicates).
    plan_key = Column(String(40), nullable=True, unique=True)
    # The date the cadence gave a generated meeting, kept when it is moved by hand: generating
    # again does not plan it a second time.
    cadence_date = Column(Date, nullable=True, info=caption("周期日期"))

    body = relationship("JointBody", info=caption("联席会"))
    attendances = relationship("Attendance", back_populates="meeting", order_by="Attendance.id",
                               info=caption("参会记录"))
    agenda_items = relationship("AgendaItem", back_populates="meeting",
                                order_by="[AgendaItem.seq, AgendaItem.id]", info=caption("议题"))
    resolutions = relationship("Resolution", back_populates="meeting", order_by="Resolution.id",
                               info=caption("议定事项"))
    attachments = relationship("MeetingAttachment", back_populates="meeting",
                               order_by="MeetingAttachment.id", info=caption("附件"))

    @property
    def heading(self) -> str:
        """The meeting named in full: body, date and type (a to-do list, a notice board)."""
        return f"{self.body.name if self.body else ''} {self.planned_date or ''} {self.type or ''}"

    @property
    def minutes_html(self):
        return render_minutes(self.minutes)

    def validate(self, session) -> None:
        if self.body is None:
            raise DomainError("请选择联席会", "body")
        if self.type not in MEETING_TYPES:
            raise DomainError("请选择会议类型", "type")
        if self.planned_date is None:
            raise DomainError("请填写计划日期", "planned_date")
        if self.held_on is not None and self.held_on > clock.today():
            raise DomainError(f"召开日期 {self.held_on} 晚于今天，不能登记尚未召开的会议", "held_on")
        if self.status == MeetingStatus.HELD and self.held_on is None:
            raise DomainError("请填写召开日期", "held_on")
        if self.status != MeetingStatus.HELD and self.held_on is not None:
            raise DomainError("会议尚未召开，不能填写召开日期（请使用“标记已召开”）", "held_on")
        if self.status == MeetingStatus.CANCELLED and not self.cancel_reason:
            raise DomainError("取消会议须填写取消原因", "cancel_reason")
        self.plan_key = plan_key(self.body.id, self.type, self.planned_date)
        if self.plan_key and _exists(session, select(Meeting.id).where(
                Meeting.plan_key == self.plan_key, Meeting.id != (self.id or 0))):
            raise DomainError(f"“{self.body.name}”在 {self.planned_date} 已安排{self.type}，"
                              "不能重复安排", "planned_date")

    def check_delete(self, session) -> None:
        if self.status == MeetingStatus.HELD:
            raise DomainError("已召开的会议是工作记录，不能删除")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.plan_key = None

    def restore(self):
        super().restore()
        self.plan_key = plan_key(self.body_id, self.type, self.planned_date)

    def __str__(self) -> str:
        return f"{self.planned_date} {self.type}" if self.planned_date else super().__str__()


def plan_key(body_id, type_, planned_date) -> str | None:
    return f"{body_id}:{type_}:{planned_date.isoformat()}" if body_id and planned_date else None


class Attendance(Entity):
    __tablename__ = "attendance"
    __table_args__ = live_order("attendance", "attendee_level", "status") + (
        live_index("attendance", "meeting", "meeting_id", "status", "unit_id", "attendee_level", "deleted_on"),)
    __label__ = N_("参会记录")
    __list_loads__ = ("meeting",)
    __scope__ = Scope(org=(lambda: _host_of_meeting(Attendance.meeting_id),),
                      unit=(lambda: Attendance.unit_id,),
                      shared=(_of_member_meetings(lambda: Attendance.meeting_id),))
    __choices__ = {"meeting": lambda: Meeting.status != MeetingStatus.CANCELLED}
    __extra_labels__ = {"non_compliant": N_("参会职级不达标")}

    meeting_id = Column(Integer, ForeignKey("meeting.id"), nullable=False, index=True,
                        info=caption("会议"))
    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=False, index=True,
                     info=caption("参会单位"))
    attendee = Column(String(50), info=caption("参会人"))
    attendee_level = Column(String(8), index=True, info=caption("参会人职级", choices=ATTENDEE_LEVELS))
    status = Column(String(4), nullable=False, default="出席", index=True,
                    info=caption("出席情况", choices=ATTENDANCE_STATUSES))
    note = Column(String(200), info=caption("备注"))
    # One live record per unit and meeting.
    attendance_key = Column(String(24), nullable=True, unique=True)

    meeting = relationship("Meeting", back_populates="attendances", info=caption("会议"))
    unit = relationship("Unit", info=caption("参会单位"))

    @hybrid_property
    def non_compliant(self) -> bool:
        """Present below the level the body requires for the meeting's type (DOMAIN.md §2: the
        一把手 at quarterly and yearly meetings; the body sets each type's level)."""
        if self.meeting is None or self.status not in PRESENT:
            return False
        required = self.meeting.body.required_level(self.meeting.type)
        return required is not None and \
            LEVEL_RANK.get(self.attendee_level, len(LEVEL_RANK) + 1) > LEVEL_RANK[required]

    @non_compliant.inplace.expression
    @classmethod
    def _non_compliant_expression(cls):
        # aliases: a query that joins meeting and joint_body itself must not correlate them
        meeting, body = Meeting.__table__.alias("m_required"), JointBody.__table__.alias("b_required")
        required = case(*((meeting.c.type == type_, body.c[column])
                          for type_, column in REQUIRED_LEVEL_COLUMN.items()), else_=None)
        required_rank = (select(level_rank(required))
                         .where(meeting.c.id == cls.meeting_id, body.c.id == meeting.c.body_id)
                         .scalar_subquery())
        return and_(cls.status.in_(PRESENT), required_rank.is_not(None),
                    level_rank(cls.attendee_level) > required_rank)

    def validate(self, session) -> None:
        if self.meeting is None:
            raise DomainError("请选择会议", "meeting")
        if self.unit is None:
            raise DomainError("请选择参会单位", "unit")
        if self.status not in ATTENDANCE_STATUSES:
            raise DomainError("请选择出席情况", "status")
        if _changed(self, "meeting_id", "unit_id"):
            if self.meeting.status == MeetingStatus.CANCELLED:
                raise DomainError("会议已取消，不能登记参会", "meeting")
            on = self.meeting.held_on or self.meeting.planned_date
            if on and on > clock.today():
                raise DomainError(f"会议尚未召开（{on:%Y-%m-%d}），不能登记参会", "meeting")
            if not is_member(session, self.meeting.body_id, self.unit.id):
                raise DomainError(f"“{self.unit.name}”不是“{self.meeting.body.name}”的成员单位，"
                                  "不能登记参会", "unit")
        if self.status in PRESENT and not (self.attendee and self.attendee_level):
            raise DomainError("出席的单位须填写参会人及其职级", "attendee")
        self.attendance_key = f"{self.meeting.id}:{self.unit.id}" if self.meeting.id else None
        if self.attendance_key and _exists(session, select(Attendance.id).where(
                Attendance.attendance_key == self.attendance_key,
                Attendance.id != (self.id or 0))):
            raise DomainError(f"“{self.unit.name}”在本次会议已有参会记录", "unit")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.attendance_key = None

    def restore(self):
        super().restore()
        self.attendance_key = f"{self.meeting_id}:{self.unit_id}"

    def __str__(self) -> str:
        return f"{self.unit} {ATTENDANCE_STATUSES.get(self.status, self.status)}"


class AgendaItem(Entity):
    __tablename__ = "agenda_item"
    __table_args__ = live_order("agenda_item", "seq", "title")
    __label__ = N_("议题")
    __scope__ = Scope(org=(lambda: _host_of_meeting(AgendaItem.meeting_id),),
                      shared=(_of_member_meetings(lambda: AgendaItem.meeting_id),))
    __choices__ = {"meeting": lambda: Meeting.status != MeetingStatus.CANCELLED}

    meeting_id = Column(Integer, ForeignKey("meeting.id"), nullable=False, index=True,
                        info=caption("会议"))
    seq = Column(Integer, index=True, nullable=False, default=1, info=caption("序号"))
    title = Column(String(200), index=True, nullable=False, info=caption("议题"))
    proposing_unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                               info=caption("提出单位"))
    description = Column(Text, info=caption("议题说明"))

    meeting = relationship("Meeting", back_populates="agenda_items", info=caption("会议"))
    proposing_unit = relationship("Unit", info=caption("提出单位"))

    def validate(self, session) -> None:
        if self.meeting is None:
            raise DomainError("请选择会议", "meeting")
        if not (self.title or "").strip():
            raise DomainError("请填写议题", "title")
        if _changed(self, "meeting_id") and self.meeting.status == MeetingStatus.CANCELLED:
            raise DomainError("会议已取消，不能添加议题", "meeting")
        if self.proposing_unit is not None and _changed(self, "meeting_id", "proposing_unit_id") \
                and not is_member(session, self.meeting.body_id, self.proposing_unit.id):
            raise DomainError(f"提出单位“{self.proposing_unit.name}”不是本联席会的成员单位",
                              "proposing_unit")

    __caption__ = "title"


class Resolution(Supervised, Entity):
    __tablename__ = "resolution"
    __table_args__ = live_order("resolution", "deadline", "status", "closed_on") + (
        live_index("resolution", "due", "deadline", "status", "closed_on", "meeting_id", "deleted_on"),)
    __label__ = N_("议定事项")
    __note_model__ = "SupervisionNote"
    __scope__ = Scope(
        org=(lambda: _host_of_meeting(Resolution.meeting_id),),
        unit=(lambda: Resolution.lead_unit_id,),
        # Co-units see it too (read only): the lead unit answers for it.
        shared=(lambda p: co_unit_rule(Resolution, resolution_co_unit)(p),),
    )
    __choices__ = {"meeting": lambda: Meeting.status == MeetingStatus.HELD,
                   "lead_unit": lambda: Unit.status == UnitStatus.REGISTERED,
                   "co_units": lambda: Unit.status == UnitStatus.REGISTERED}
    __extra_labels__ = {"overdue": N_("是否逾期"), "closed_on_time": N_("按期办结")}
    # The list opens on what is still to do: open resolutions by deadline, then the closed ones,
    # latest closed first.
    __orders__ = {"open_first": lambda: (
        case((Resolution.status == ResolutionStatus.DONE, 1), else_=0),
        case((Resolution.status != ResolutionStatus.DONE, Resolution.deadline)),
        Resolution.closed_on.desc(), Resolution.id.desc())}

    meeting_id = Column(Integer, ForeignKey("meeting.id"), nullable=False, index=True,
                        info=caption("会议"))
    content = Column(Text, nullable=False, info=caption("议定事项"))

    meeting = relationship("Meeting", back_populates="resolutions", info=caption("会议"))
    lead_unit = relationship("Unit", info=caption("牵头单位"))
    co_units = relationship("Unit", secondary=resolution_co_unit, info=caption("配合单位"))
    notes = relationship("SupervisionNote", back_populates="resolution",
                         order_by="[SupervisionNote.note_date, SupervisionNote.id]",
                         info=caption("督办记录"))

    def supervisor_org_id(self) -> int | None:
        return self.meeting.body.host_id if self.meeting is not None else None

    def validate(self, session) -> None:
        meeting = self.meeting
        if meeting is None:
            raise DomainError("请选择会议", "meeting")
        if not (self.content or "").strip():
            raise DomainError("请填写议定事项内容", "content")
        if self.lead_unit is None:
            raise DomainError("请选择牵头单位", "lead_unit")
        if self.deadline is None:
            raise DomainError("请填写办结时限", "deadline")
        if _changed(self, "meeting_id") and meeting.status != MeetingStatus.HELD:
            raise DomainError("只能为已召开的会议登记议定事项（请先将会议标记为已召开）", "meeting")
        if meeting.held_on and self.deadline < meeting.held_on:
            raise DomainError("办结时限不能早于会议召开日期", "deadline")
        # Units are checked when chosen: one that leaves the body later keeps its resolutions.
        chosen = [(self.lead_unit, "牵头单位")] if _changed(self, "lead_unit_id") else []
        if self.id is None or get_history(self, "co_units").has_changes():
            chosen += [(u, "配合单位") for u in self.co_units]
        for unit, role in chosen:
            if not is_member(session, meeting.body_id, unit.id):
                raise DomainError(f"{role}“{unit.name}”不是“{meeting.body.name}”的成员单位",
                                  "lead_unit" if role == "牵头单位" else "co_units")
        self.check_assignment()
        self.check_closing(meeting.held_on, "会议召开日期")

    def __str__(self) -> str:
        text = self.content or ""
        return text[:30] + ("…" if len(text) > 30 else "")


class SupervisionNote(ProgressNote, Entity):
    __tablename__ = "supervision_note"
    __table_args__ = live_order("supervision_note", "note_date", "progress")
    __label__ = N_("督办记录")
    __task__ = "resolution"
    __task_label__ = "议定事项"
    __scope__ = Scope(
        org=(lambda: _host_of_resolution(SupervisionNote.resolution_id),),
        # A progress report belongs to the unit that made it (the lead unit): its liaison
        # writes it. The host's own supervision notes carry no unit and stay the host's.
        unit=(lambda: SupervisionNote.unit_id,),
        shared=(lambda p: SupervisionNote.resolution_id.in_(_resolutions_of_units(p.unit_ids))
                if p.unit_ids else None,),
    )
    __choices__ = {"resolution": lambda: Resolution.status != DONE}
    __extra_labels__ = {"kind": N_("类型")}

    resolution_id = Column(Integer, ForeignKey("resolution.id"), nullable=False, index=True,
                           info=caption("议定事项"))

    resolution = relationship("Resolution", back_populates="notes", info=caption("议定事项"))
    unit = relationship("Unit", info=caption("报送单位"))


class MeetingAttachment(Entity):
    """A file of a meeting (the signed minutes, photos, slides), stored under the upload
    folder; read through the meeting's page, in the meeting's scope."""

    __tablename__ = "meeting_attachment"
    __label__ = N_("会议附件")
    __scope__ = Scope(org=(lambda: _host_of_meeting(MeetingAttachment.meeting_id),),
                      shared=(_of_member_meetings(lambda: MeetingAttachment.meeting_id),))

    meeting_id = Column(Integer, ForeignKey("meeting.id"), nullable=False, index=True,
                        info=caption("会议"))
    filename = Column(String(200), nullable=False, info=caption("文件名"))
    # The file, in the shared storage (app/storage.py). Before issue 21 `stored_name` named it
    # under UPLOAD_FOLDER/meetings (`flask gongjian init` moves such files in); since, it is a
    # unique name only.
    stored_name = Column(String(64), nullable=False, unique=True)
    file_id = Column(Integer, ForeignKey("stored_file.id", ondelete="SET NULL"))
    content_type = Column(String(100), nullable=False, info=caption("文件类型"))
    size = Column(Integer, nullable=False, info=caption("大小（字节）"))

    meeting = relationship("Meeting", back_populates="attachments", info=caption("会议"))

    __caption__ = "filename"


# --- helpers -----------------------------------------------------------------------------------

def is_member(session, body_id, unit_id) -> bool:
    """Whether the unit is (still) a member of the body."""
    return _exists(session, select(BodyMember.id).where(
        BodyMember.body_id == body_id, BodyMember.unit_id == unit_id,
        BodyMember.deleted_on.is_(None)))


def _changed(obj, *keys) -> bool:
    """New, or one of these columns (or the relationships setting them) changed."""
    if obj.id is None:
        return True
    relations = {c.key: r.key for r in type(obj).__mapper__.relationships
                 for c in r.local_columns if r.direction.name == "MANYTOONE"}
    return any(get_history(obj, k).has_changes()
               or (k in relations and get_history(obj, relations[k]).has_changes())
               for k in keys)


def _exists(session, stmt) -> bool:
    from app.models.org import _exists as exists

    return exists(session, stmt)
