"""The three lists (三单) and micro-wishes: resources units offer, needs residents raise, service
items that put one against the other, and residents' small wishes (DOMAIN.md §1–§3)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from itertools import pairwise

from flask import current_app, g, has_request_context
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    case,
    event,
    func,
    or_,
    select,
    text,
    union,
    update,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import relationship

from app import clock, validators
from app.errors import DomainError
from app.i18n import N_, gettext
from app.models.base import (
    LIVE,
    Entity,
    Model,
    Scope,
    caption,
    epoch_seconds,
    live_index,
    live_order,
    plus_seconds,
    state_choices,
    status_is_version,
)
from app.models.org import Dictionary, Member, Organization, Unit, UnitStatus
from app.security.principal import current_principal, unscoped
from app.security.roles import ADMIN_GROUP


class ResourceStatus(StrEnum):
    """The states of a resource list entry's review; the values are what the database stores."""

    DRAFT = "草稿"
    PENDING = "待审核"
    PUBLISHED = "已发布"
    REJECTED = "已驳回"
    WITHDRAWN = "已撤回"


class ServiceStatus(StrEnum):
    """The states of a service item's review and run; the values are what the database stores."""

    DRAFT = "草稿"
    PENDING = "待审核"
    PUBLISHED = "已发布"
    RUNNING = "进行中"
    COMPLETED = "已完成"
    REJECTED = "已驳回"


class NeedStatus(StrEnum):
    """The states of the closed loop of a need (五单办理, DOMAIN.md §3); the values are what the database stores."""

    NEW = "待受理"
    ACCEPTED = "已受理"
    REJECTED = "已驳回"
    DISPATCHED = "已派单"
    IN_HAND = "办理中"
    DONE = "已办结"
    VISITED = "已回访"


class WishStatus(StrEnum):
    """The states of a micro-wish from review to the resident's confirmation; the values are what the database stores."""

    PENDING = "待审核"
    OPEN = "待认领"
    CLAIMED = "已认领"
    FULFILLED = "已实现"
    CONFIRMED = "已确认"
    REJECTED = "已驳回"


class MatchStatus(StrEnum):
    """A resource proposed for a need (联合会提议、驻区单位认领); the values are what the database stores."""

    PROPOSED = "待认领"
    CONFIRMED = "已认领"
    DECLINED = "已婉拒"


RESOURCE_STATUSES = state_choices(ResourceStatus)
MATCH_STATUSES = state_choices(MatchStatus)
SERVICE_STATUSES = state_choices(ServiceStatus)
NEED_STATUSES = state_choices(NeedStatus)
NEED_CLOSED = (NeedStatus.DONE, NeedStatus.VISITED, NeedStatus.REJECTED)
NEED_DONE = (NeedStatus.DONE, NeedStatus.VISITED)


@dataclass(frozen=True)
class PastWork:
    """What a row recorded after the fact (an office's ledger, imported) must carry: `loop`, its
    statuses in order, and `steps`, the fields the move into each status fills — a tuple of
    names is "one of them" (a wish's claimant: a member or a unit). A row carries the fields
    of the steps it went through, in the order of their dates, and none of the steps it did not;
    a status the loop could not have reached from them is refused. A status outside the loop
    (已驳回) carries none. (Rows the services create move through the workflow, which fills
    these itself.)"""

    noun: str  # 需求, 心愿: "状态为“已办结”的需求须填写办结时间"
    loop: tuple[str, ...]
    steps: tuple[tuple[str | tuple[str, ...], str], ...]

    def check(self, row) -> None:
        columns = type(row).__table__.columns
        relations = type(row).__mapper__.relationships

        def label(name):
            return str((columns[name] if name in columns else relations[name]).info["label"])

        status = row.status
        step = self.loop.index(status) if status in self.loop else -1
        for names, reached in self.steps:
            names = (names,) if isinstance(names, str) else names
            filled = [name for name in names if getattr(row, name) not in (None, "")]
            labels = "或".join(label(name) for name in names)
            if step >= self.loop.index(reached) and not filled:
                raise DomainError(f"状态为“{status}”的{self.noun}须填写{labels}", names[0])
            if step < self.loop.index(reached) and filled:
                raise DomainError(f"状态为“{status}”的{self.noun}尚未到“{reached}”，不应填写{label(filled[0])}",
                                  filled[0])
            if len(filled) > 1:
                raise DomainError(f"{labels}只能填写其中一项", filled[1])
        dated = ["created_on", *(step for step, _ in self.steps if isinstance(step, str)
                                 and isinstance(columns[step].type, DateTime))]
        dates = [(name, getattr(row, name)) for name in dated if getattr(row, name) is not None]
        for (before, earlier), (name, later) in pairwise(dates):
            if later < earlier:
                raise DomainError(f"{label(name)}不能早于{label(before)}", name)


# The loop in order, and what each of its moves records (accept: 受理时间, …, visit: 满意度).
NEED_LOOP = (NeedStatus.NEW, NeedStatus.ACCEPTED, NeedStatus.DISPATCHED, NeedStatus.IN_HAND,
             NeedStatus.DONE, NeedStatus.VISITED)
NEED_STEP_DATES = (("accepted_on", NeedStatus.ACCEPTED), ("dispatched_on", NeedStatus.DISPATCHED),
                   ("completed_on", NeedStatus.DONE))
NEED_PAST_WORK = PastWork("需求", NEED_LOOP, (*NEED_STEP_DATES, ("satisfaction", NeedStatus.VISITED)))
# A wish's loop (DOMAIN.md §3): published, claimed by a member or a unit, fulfilled (with its
# 实现凭证, as the move asks), confirmed with the resident's feedback.
WISH_PAST_WORK = PastWork("心愿", (WishStatus.PENDING, WishStatus.OPEN, WishStatus.CLAIMED,
                                  WishStatus.FULFILLED, WishStatus.CONFIRMED), (
    (("claimant_member", "claimant_unit"), WishStatus.CLAIMED), ("claimed_on", WishStatus.CLAIMED),
    ("fulfilled_on", WishStatus.FULFILLED), ("proof", WishStatus.FULFILLED),
    ("feedback", WishStatus.CONFIRMED)))
# The steps of the loop a need can be late at, by the status that waits for it (DOMAIN.md §3):
# 受理 (accept), 派单 (dispatch), 接单 (take), 办理 (complete).
NEED_STEPS = ((NeedStatus.NEW, N_("受理")), (NeedStatus.ACCEPTED, N_("派单")),
              (NeedStatus.DISPATCHED, N_("接单")), (NeedStatus.IN_HAND, N_("办理")))
# 扫码点单: filed by a resident on the public intake page (/public/intake/<org code>).
PUBLIC_SOURCE = "扫码点单"
NEED_SOURCES = {s: N_(s) for s in ("居民", "网格员", "社区", "驻区单位", "平台", PUBLIC_SOURCE)}
URGENCIES = {"一般": N_("一般"), "重大": N_("重大"), "复杂": N_("复杂")}
WISH_STATUSES = state_choices(WishStatus)

need_member = Table(
    "need_member", Model.metadata,
    Column("need_id", Integer, ForeignKey("need.id"), primary_key=True),
    Column("member_id", Integer, ForeignKey("member.id"), primary_key=True, index=True),
)
service_item_need = Table(
    "service_item_need", Model.metadata,
    Column("service_item_id", Integer, ForeignKey("service_item.id"), primary_key=True),
    Column("need_id", Integer, ForeignKey("need.id"), primary_key=True, index=True),
)
service_item_resource = Table(
    "service_item_resource", Model.metadata,
    Column("service_item_id", Integer, ForeignKey("service_item.id"), primary_key=True),
    Column("resource_id", Integer, ForeignKey("resource.id"), primary_key=True, index=True),
)


def need_time_limit(urgency: str) -> timedelta:
    """The whole loop's limit from intake to 办结 for this urgency (configurable per district;
    for 复杂, the time within which it must have a plan)."""
    hours = current_app.config["NEED_TIME_LIMIT_HOURS"].get(urgency, 24)
    return timedelta(hours=hours)


def need_step_limits(urgency: str) -> dict[str, timedelta]:
    """For each status that waits for a step before 办理, how long after intake that step is
    due: the shares of the whole limit (NEED_STEP_SHARES, per urgency), added up in order — to
    the whole second, so that each database adds it to a stored instant exactly as Python does
    (`plus_seconds`, `fill_step_due`). Kept for the request: a need list asks it twice a row."""
    kept = g.setdefault("_gongjian_step_limits", {}) if has_request_context() else {}
    if urgency not in kept:
        kept[urgency] = _step_limits(urgency)
    return kept[urgency]


def _step_limits(urgency: str) -> dict[str, timedelta]:
    whole = need_time_limit(urgency)
    shares = current_app.config["NEED_STEP_SHARES"].get(urgency) or {}
    due, total = {}, 0.0
    for status, step in NEED_STEPS[:-1]:
        total += float(shares.get(step, 0))
        due[status] = timedelta(seconds=round((whole * total).total_seconds()))
    return due


def need_limits_basis() -> str:
    """The time limits the stored due instants (`Need.step_due_on`) are computed with: when the
    configuration says otherwise, they are recomputed (`fill_step_due`)."""
    config = current_app.config
    return repr((sorted(config["NEED_TIME_LIMIT_HOURS"].items()),
                 sorted((u, sorted(s.items())) for u, s in config["NEED_STEP_SHARES"].items())))


def _community_of_unit(unit_id_column):
    """A row placed by its unit sits in that unit's community. Correlated to the outer row
    only (the outer query may join units itself)."""
    return (select(Unit.community_id).where(Unit.id == unit_id_column)
            .correlate_except(Unit).scalar_subquery())


def in_own_communities(column, principal):
    """`column` is the community a liaison's unit stands in or a member lives in (None: the
    principal has neither)."""
    parts = []
    if principal.unit_ids:
        parts.append(column.in_(select(Unit.community_id)
                                .where(Unit.id.in_(principal.unit_ids)).correlate(None)))
    if principal.member_ids:
        parts.append(column.in_(select(Member.community_id)
                                .where(Member.id.in_(principal.member_ids)).correlate(None)))
    return or_(*parts) if parts else None


class Resource(Entity):
    __tablename__ = "resource"
    __table_args__ = live_order("resource", "changed_on", "title", "year", "status") + (
        # The dashboard's count of a year's list by category and status (figures.py).
        live_index("resource", "kind", "year", "category_id", "status", "unit_id", "deleted_on"),)
    __label__ = N_("资源清单")
    __scope__ = Scope(org=(lambda: _community_of_unit(Resource.unit_id),),
                      unit=(lambda: Resource.unit_id,))
    __choices__ = {
        "unit": lambda: Unit.status == UnitStatus.REGISTERED,
        "category": lambda: _dictionary("resource_category"),
    }

    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=False, index=True,
                     info=caption("提供单位"))
    year = Column(Integer, nullable=False, index=True, info=caption("年度"))
    category_id = Column(Integer, ForeignKey("dictionary.id"), nullable=False, index=True,
                         info=caption("资源类别"))
    title = Column(String(100), index=True, nullable=False, info=caption("资源名称"))
    content = Column(Text, info=caption("资源内容"))
    quantity = Column(Numeric(12, 2), info=caption("数量"))
    measure = Column(String(16), info=caption("单位"))
    available_from = Column(Date, info=caption("可用开始日期"))
    available_to = Column(Date, info=caption("可用结束日期"))
    contact = Column(String(50), info=caption("联系人"))
    phone = Column(String(30), info=caption("联系电话"))

    __extra_labels__ = {"phone_shown": N_("联系电话")}
    __revealing__ = ("phone_shown",)

    @property
    def phone_shown(self) -> str:
        """A resource's contact phone, as a member's: in full only to the unit's and its
        community's revealing roles (the auditor reads it masked)."""
        from app.models.org import shown_phone

        return shown_phone(self, self.phone)

    status = Column(String(8), nullable=False, default=ResourceStatus.DRAFT, index=True,
                    info=caption("状态", choices=RESOURCE_STATUSES))
    reject_reason = Column(String(500), info=caption("驳回原因"))
    __mapper_args__ = status_is_version(status)

    unit = relationship("Unit", info=caption("提供单位"))
    category = relationship("Dictionary", info=caption("资源类别"))

    def validate(self, session) -> None:
        _check_period(self.available_from, self.available_to)
        _check_reviewed(self, session)

    __caption__ = "title"


class ServiceItem(Entity):
    __tablename__ = "service_item"
    __table_args__ = live_order("service_item", "changed_on", "title", "year", "status") + (
        live_index("service_item", "kind", "year", "category_id", "status", "provider_unit_id", "deleted_on"),)
    __label__ = N_("服务清单")
    __scope__ = Scope(org=(lambda: _community_of_unit(ServiceItem.provider_unit_id),),
                      unit=(lambda: ServiceItem.provider_unit_id,),
                      # Published items are public commitments: the members living in the
                      # provider's community see them (and log service against them).
                      shared=(lambda p: _offered_nearby(p),))
    __choices__ = {
        "provider_unit": lambda: Unit.status == UnitStatus.REGISTERED,
        # The needs' categories: a service item answers a kind of need (matching).
        "category": lambda: _dictionary("need_category"),
    }

    provider_unit_id = Column(Integer, ForeignKey("unit.id"), nullable=False, index=True,
                              info=caption("提供单位"))
    year = Column(Integer, nullable=False, index=True, info=caption("年度"))
    category_id = Column(Integer, ForeignKey("dictionary.id"), nullable=False, index=True,
                         info=caption("服务类别"))
    title = Column(String(100), index=True, nullable=False, info=caption("项目名称"))
    content = Column(Text, info=caption("服务内容"))
    capacity = Column(Integer, nullable=False, default=0, info=caption("拟认领数"))
    points = Column(Integer, nullable=False, default=0, info=caption("积分分值"))
    start_date = Column(Date, info=caption("开始日期"))
    end_date = Column(Date, info=caption("结束日期"))
    place = Column(String(200), info=caption("服务地点"))
    commitment = Column(Text, info=caption("公开承诺"))
    fulfilment = Column(Text, info=caption("践诺情况"))
    status = Column(String(8), nullable=False, default=ServiceStatus.DRAFT, index=True,
                    info=caption("状态", choices=SERVICE_STATUSES))
    reject_reason = Column(String(500), info=caption("驳回原因"))
    __mapper_args__ = status_is_version(status)

    provider_unit = relationship("Unit", info=caption("提供单位"))
    category = relationship("Dictionary", info=caption("服务类别"))
    resources = relationship("Resource", secondary=service_item_resource,
                             info=caption("关联资源"))
    needs = relationship("Need", secondary=service_item_need, back_populates="service_items",
                         info=caption("关联需求"))

    def validate(self, session) -> None:
        _check_period(self.start_date, self.end_date)
        _check_reviewed(self, session)
        if (self.capacity or 0) < 0 or (self.points or 0) < 0:
            raise DomainError("拟认领数和积分分值不能为负数", "capacity")

    __caption__ = "title"


class Need(Entity):
    __tablename__ = "need"
    __table_args__ = live_order("need", "created_on", "title", "urgency", "status", "deadline") + (
        # The dashboard's (figures.py): the needs raised per community; the open ones, each
        # late or not by its step's columns (`overdue`); those closed per unit (三个一).
        live_index("need", "community", "community_id", "created_on", "status", "deleted_on"),
        live_index("need", "raised", "created_on", "status", "community_id", "deleted_on"),
        live_index("need", "open", "status", "created_on", "urgency", "deadline", "community_id",
                   "category_id", "deleted_on"),
        live_index("need", "closed", "completed_on", "status", "assigned_unit_id", "deleted_on"),
        # The open needs not yet late (the overdue counts subtract them from the open ones):
        # one range of their stored due instants, with every column the test reads.
        live_index("need", "due", "due_rank", "step_due_on", "status", "created_on", "urgency",
                   "deadline", "community_id", "category_id", "deleted_on"))
    __label__ = N_("需求清单")
    __scope__ = Scope(
        # Its community, and its grid (a grid secretary's subtree).
        org=(lambda: Need.community_id, lambda: Need.grid_id),
        # Visible by rule: dispatched to one's unit or to oneself, or submitted by one's unit.
        shared=(
            lambda p: Need.assigned_unit_id.in_(p.unit_ids) if p.unit_ids else None,
            lambda p: Need.submitted_by_unit_id.in_(p.unit_ids) if p.unit_ids else None,
            lambda p: Need.id.in_(select(need_member.c.need_id).where(
                need_member.c.member_id.in_(p.member_ids)).correlate(None))
            if p.member_ids else None,
            lambda p: Need.submitted_by_member_id.in_(p.member_ids) if p.member_ids else None,
            # a need one's unit was proposed a resource for (资源对接), to answer it
            lambda p: _proposed_to(p.unit_ids) if p.unit_ids else None,
        ),
        created_by_rule=True,  # 群众接单: a liaison or a member files a need to a community
    )
    __choices__ = {
        "community": lambda: Organization.type == "community",
        "grid": lambda: Organization.type.in_(("grid", "building")),
        "category": lambda: _dictionary("need_category"),
        "assigned_unit": lambda: Unit.status == UnitStatus.REGISTERED,
    }
    __audit_masked__ = frozenset({"requester_phone"})
    __past_work__ = NEED_PAST_WORK  # what an imported need past 待受理 carries
    __sql_columns__ = {"overdue_step": lambda caption: Need.overdue_step_sql(
        lambda step: str(gettext(step)))}
    __revealing__ = ("requester_phone_shown",)
    # The list opens on the open needs whose current step falls due soonest (the late ones
    # first), then those without a time limit, the closed ones last, latest closed first.
    __orders__ = {"step_due_first": lambda: Need.step_due_order()}
    __extra_labels__ = {"overdue": N_("是否逾期"), "overdue_step": N_("逾期环节"),
                        "step_due": N_("本环节时限"),
                        "requester_phone_masked": N_("联系电话"),
                        "requester_phone_shown": N_("联系电话"),
                        "assigned_members": N_("派单党员"), "closed_on_time": N_("按期办结"),
                        "matched": N_("已匹配服务项目或资源")}

    source = Column(String(8), index=True, nullable=False, default="居民",
                    info=caption("来源渠道", choices=NEED_SOURCES))
    requester_name = Column(String(50), info=caption("提出人"))
    requester_phone = Column(String(30), info=caption("联系电话"))
    # The office's own number of the need (its ledger's 编号), if it keeps one: what a
    # re-import of its file updates by, within the community (views/lists.py import_key).
    code = Column(String(50), nullable=True, index=True, info=caption("编号"))
    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("所在社区"))
    grid_id = Column(Integer, ForeignKey("organization.id"), nullable=True, index=True,
                     info=caption("所在网格"))
    category_id = Column(Integer, ForeignKey("dictionary.id"), nullable=False, index=True,
                         info=caption("需求类别"))
    title = Column(String(100), index=True, nullable=False, info=caption("需求标题"))
    content = Column(Text, info=caption("需求内容"))
    urgency = Column(String(4), nullable=False, default="一般", index=True,
                     info=caption("紧急程度", choices=URGENCIES))
    status = Column(String(8), nullable=False, default=NeedStatus.NEW, index=True,
                    info=caption("状态", choices=NEED_STATUSES))
    submitted_by_unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                                  info=caption("提交单位"))
    submitted_by_member_id = Column(Integer, ForeignKey("member.id"), nullable=True, index=True,
                                    info=caption("提交党员"))
    reject_reason = Column(String(500), info=caption("驳回原因"))
    assigned_unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                              info=caption("派单单位"))
    dispatch_note = Column(Text, info=caption("派单说明"))
    deadline = Column(DateTime, nullable=True, index=True, info=caption("办理时限"))
    decline_reason = Column(String(500), info=caption("退单原因"))
    taken_by_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("接单人"))
    result = Column(Text, info=caption("办理结果"))
    accepted_on = Column(DateTime, info=caption("受理时间"))
    dispatched_on = Column(DateTime, info=caption("派单时间"))
    taken_on = Column(DateTime, info=caption("接单时间"))
    completed_on = Column(DateTime, index=True, info=caption("办结时间"))
    visitor = Column(String(50), info=caption("回访人"))
    visited_on = Column(Date, info=caption("回访日期"))
    satisfaction = Column(Integer, info=caption("满意度"))
    visit_comment = Column(Text, info=caption("回访意见"))
    # 复杂: the 办理方案 the taker commits to at 接单, and the date it promises 办结 by (which
    # becomes the need's deadline).
    plan = Column(Text, info=caption("办理方案"))
    plan_due = Column(Date, info=caption("方案完成日期"))
    # Filed on the public intake page: the resident's tracking code (secrets.token_urlsafe,
    # 128 bits), the photo it sent, how many more times the same resident reported it, and
    # the rating the resident gave from the tracking page after 办结 (the 回访评单 may adopt it).
    tracking_code = Column(String(32), nullable=True, unique=True, info=caption("查询码"))
    photo_id = Column(Integer, ForeignKey("stored_file.id"), nullable=True,
                      info=caption("现场照片"))
    repeat_reports = Column(Integer, nullable=False, default=0, server_default="0",
                            info=caption("重复反映次数"))
    resident_satisfaction = Column(Integer, info=caption("居民评价满意度"))
    resident_comment = Column(Text, info=caption("居民评价意见"))
    resident_rated_on = Column(DateTime, info=caption("居民评价时间"))
    # The latest photo taken on the spot with a move (接单, 退单, 办结) on the phone page.
    handling_photo_id = Column(Integer, ForeignKey("stored_file.id"), nullable=True,
                               info=caption("办理照片"))
    # The list's default order, stored so that an index serves it (issue 30): when the current
    # step falls due (`step_due`; none once closed or without a time limit), and the row's
    # place — 0 open with a due time, 1 open without one, 2 closed. Rewritten on every ORM
    # write of a need (`_keep_step_due`); rows written in bulk (seeds, migration 0035), and
    # every open need when the time limits change, are filled by `fill_step_due`. Not a flag:
    # `overdue` stays computed from the dates.
    step_due_on = Column(DateTime, nullable=True, info=caption("本环节时限"))
    due_rank = Column(SmallInteger, nullable=False, default=2, server_default="2")
    __mapper_args__ = status_is_version(status)

    community = relationship("Organization", foreign_keys=[community_id], info=caption("所在社区"))
    grid = relationship("Organization", foreign_keys=[grid_id], info=caption("所在网格"))
    category = relationship("Dictionary", info=caption("需求类别"))
    submitted_by_unit = relationship("Unit", foreign_keys=[submitted_by_unit_id],
                                     info=caption("提交单位"))
    submitted_by_member = relationship("Member", foreign_keys=[submitted_by_member_id],
                                       info=caption("提交党员"))
    assigned_unit = relationship("Unit", foreign_keys=[assigned_unit_id], info=caption("派单单位"))
    assigned_members = relationship("Member", secondary=need_member, info=caption("派单党员"))
    service_items = relationship("ServiceItem", secondary=service_item_need, back_populates="needs",
                                 info=caption("关联服务项目"))
    resource_matches = relationship("NeedResource", viewonly=True, info=caption("资源对接"))

    @hybrid_property
    def overdue(self) -> bool:
        """Late at its current step: 受理, 派单 and 接单 each due a share of the urgency's limit
        after intake, 办理 by its deadline — computed in the query, never a stored flag."""
        if self.status in NEED_CLOSED:
            return False
        now = clock.utcnow()
        if self.deadline is not None and self.deadline < now:
            return True
        due = need_step_limits(self.urgency).get(self.status)
        return bool(due is not None and self.created_on is not None
                    and self.created_on < now - due)

    @overdue.inplace.expression
    @classmethod
    def _overdue_expression(cls):
        return or_(*cls._late_at_step().values())

    @classmethod
    def _late_at_step(cls) -> dict:
        """For each open status, the SQL condition of being late at its step. The application's
        clock, as for the dates it writes (the database's may be UTC); the limits are
        constants per urgency, so each is a plain comparison of a stored date an index serves."""
        now = clock.utcnow()
        by_deadline = and_(cls.deadline.is_not(None), cls.deadline < now)
        late = {}
        for status, _step in NEED_STEPS:
            by_step = [and_(cls.urgency == urgency, cls.created_on < now - due)
                       for urgency in URGENCIES
                       for waiting, due in need_step_limits(urgency).items() if waiting == status]
            late[status] = and_(cls.status == status, or_(by_deadline, *by_step))
        return late

    @property
    def step_due(self):
        """When its current step falls due: 受理, 派单 and 接单 a share of the urgency's limit
        after intake, 办理 its deadline — or the deadline, if that comes first (as `overdue`
        counts it late); none once closed."""
        if self.status in NEED_CLOSED:
            return None
        due = need_step_limits(self.urgency).get(self.status)
        step = self.created_on + due if due is not None and self.created_on else None
        return min((t for t in (step, self.deadline) if t is not None), default=None)

    def keep_step_due(self) -> None:
        """Store `step_due` and the row's place in the list (`step_due_on`, `due_rank`)."""
        if self.created_on is None:  # a new row: the defaults its INSERT would take, now
            self.created_on = clock.utcnow()
        for name in ("status", "urgency"):
            if getattr(self, name) is None:
                setattr(self, name, type(self).__table__.c[name].default.arg)
        due = self.step_due
        self.step_due_on = due
        self.due_rank = 2 if self.status in NEED_CLOSED else 0 if due is not None else 1

    @classmethod
    def _step_due_case(cls, table, plus, instant):
        """`step_due` as SQL over `table`'s columns: `plus(created_on, seconds)` a step's due
        time, `instant(column)` a stored instant in the same terms."""
        c = table.c
        step = case(*[(and_(c.urgency == urgency, c.status == status),
                       plus(c.created_on, int(due.total_seconds())))
                      for urgency in URGENCIES
                      for status, due in need_step_limits(urgency).items()])
        deadline = instant(c.deadline)
        return case((c.status.in_(NEED_CLOSED), None),
                    (and_(c.deadline.is_not(None), or_(step.is_(None), deadline < step)),
                     deadline), else_=step)

    @classmethod
    def step_due_sql(cls):
        """`step_due` in SQL, as seconds (epoch_seconds)."""
        return cls._step_due_case(cls.__table__, lambda at, seconds: epoch_seconds(at) + seconds,
                                  epoch_seconds)

    @classmethod
    def step_due_order(cls) -> tuple:
        """The list's default order: open needs by when their step falls due (the late ones
        first), those without a time limit after them, then the closed ones, latest closed
        first — the stored columns, in the order of the index ix_need_live_step_due, so that a
        page reads one range of it instead of sorting every need (issue 30)."""
        return (cls.due_rank, cls.step_due_on, cls.completed_on.desc(), cls.id.desc())

    @property
    def overdue_step(self) -> str:
        """The step it is late at (受理/派单/接单/办理), or nothing."""
        return str(dict(NEED_STEPS)[self.status]) if self.overdue else ""

    @classmethod
    def overdue_step_sql(cls, label=str):
        """`overdue_step` in SQL: the dashboard counts by it, the export writes it."""
        return case(*[(condition, label(dict(NEED_STEPS)[status]))
                      for status, condition in cls._late_at_step().items()], else_="")

    @hybrid_property
    def closed_on_time(self) -> bool:
        """Closed (办结) no later than its deadline: the 按期办结 of the figures."""
        return bool(self.status in NEED_DONE and self.completed_on and self.deadline
                    and self.completed_on <= self.deadline)

    @closed_on_time.inplace.expression
    @classmethod
    def _closed_on_time_expression(cls):
        return and_(cls.status.in_(NEED_DONE), cls.completed_on <= cls.deadline)

    @hybrid_property
    def matched(self) -> bool:
        """Linked to at least one service item, or met by a unit's resource its unit took on
        (认领): the match rate of the three lists (DOMAIN.md §5)."""
        return bool(self.service_items) or any(
            m.status == MatchStatus.CONFIRMED and m.deleted_on is None
            for m in self.resource_matches)

    @matched.inplace.expression
    @classmethod
    def _matched_expression(cls):
        items, matches = ServiceItem.__table__, NeedResource.__table__  # Core: whoever may see them
        # One IN over both kinds of link: PostgreSQL joins it to the needs (an OR of two INs
        # it tested against every need, 0.36 s over a city's year).
        return cls.id.in_(union(
            select(service_item_need.c.need_id)
            .join(items, items.c.id == service_item_need.c.service_item_id)
            .where(items.c.deleted_on.is_(None)),
            select(matches.c.need_id)
            .where(matches.c.status == MatchStatus.CONFIRMED, matches.c.deleted_on.is_(None))))

    @property
    def requester_phone_masked(self) -> str:
        return validators.mask_phone(self.requester_phone)

    @property
    def requester_phone_shown(self) -> str:
        """In full to the need's community admins (who call the resident back), else masked."""
        from app.models.org import shown_phone

        return shown_phone(self, self.requester_phone)

    def on_create(self, principal) -> None:
        """A need filed by a liaison or a member remembers who filed it (and they see it); one
        filed by a grid secretary comes from the grid (网格员)."""
        if "GridAdmin" in principal.role_names and not (
                principal.sees_all or principal.role_names & ADMIN_GROUP):
            self.source = "网格员"
        if principal.sees_all or principal.org_paths:
            return
        if principal.unit_ids and self.submitted_by_unit_id is None:
            self.submitted_by_unit_id = principal.unit_ids[0]
            self.source = "驻区单位"
        elif principal.member_ids and self.submitted_by_member_id is None:
            self.submitted_by_member_id = principal.member_ids[0]
            # A member's own report keeps the channel it chose (the form's 来源渠道).
            self.source = self.source or "平台"

    def validate(self, session) -> None:
        if self.community is not None and self.community.type != "community":
            raise DomainError("所在社区必须是社区党组织", "community")
        _check_grid(self)
        if self.satisfaction is not None and not 1 <= self.satisfaction <= 5:
            raise DomainError("满意度应为1到5之间的整数", "satisfaction")
        if self.source == PUBLIC_SOURCE and not self.tracking_code:
            raise DomainError("“扫码点单”只用于居民在扫码页面提交的需求，请选择其他来源渠道",
                              "source")

    __caption__ = "title"


# The default order's index (Need.step_due_order): open needs by due time, then the closed ones
# latest first; of the live rows (partial as `live_order`'s; MariaDB indexes all rows).
Index("ix_need_live_step_due", Need.due_rank, Need.step_due_on, Need.completed_on.desc(),
      Need.id.desc(), postgresql_where=text(LIVE), sqlite_where=text(LIVE))


@event.listens_for(Need, "before_insert")
@event.listens_for(Need, "before_update")
def _keep_step_due(mapper, connection, need) -> None:
    """Every ORM write of a need — each transition and compare-and-set claim, a form, the API,
    an import, the public intake, a restore from the recycle bin — goes through here."""
    need.keep_step_due()


def fill_step_due(connection) -> int:
    """Write `step_due_on` and `due_rank` of every open need from its columns and today's time
    limits, in SQL (one UPDATE): for rows written without the ORM (the seeds' bulk inserts,
    migration 0035) and after a change of NEED_TIME_LIMIT_HOURS or NEED_STEP_SHARES (`flask
    gongjian needs recompute-due`). A closed need's are constant (none, 2). Returns the rows."""
    need = Need.__table__
    due = Need._step_due_case(need, plus_seconds, lambda column: column)
    return connection.execute(
        update(need).where(need.c.status.not_in(NEED_CLOSED))
        # not a change anybody made: the row's changed_on (an onupdate) stays
        .values(step_due_on=due, due_rank=case((due.is_(None), 1), else_=0),
                changed_on=need.c.changed_on)).rowcount


class NeedDueBasis(Model):
    """The time limits (`need_limits_basis`) the stored due instants were last filled with: one
    row. Not business data, no scope."""

    __tablename__ = "need_due_basis"

    id = Column(Integer, primary_key=True, autoincrement=False)
    basis = Column(Text, nullable=False)
    filled_on = Column(DateTime, nullable=False)


def ensure_step_due(connection, always: bool = False) -> int | None:
    """Refill every open need's stored due instant if the time limits are not those it was
    filled with (`flask gongjian init`, run by every deploy), or `always` (`needs
    recompute-due`); returns the rows refilled, None when they were current."""
    basis, table = need_limits_basis(), NeedDueBasis.__table__
    stored = connection.execute(select(table.c.basis).where(table.c.id == 1)).scalar()
    if stored == basis and not always:
        return None
    rows = fill_step_due(connection)
    values = {"basis": basis, "filled_on": clock.utcnow()}
    if stored is None:
        connection.execute(table.insert().values(id=1, **values))
    else:
        connection.execute(table.update().where(table.c.id == 1).values(**values))
    return rows


def _proposed_to(unit_ids):
    """Needs for which a resource of these units was proposed (Core: no scope recursion)."""
    matches, resources = NeedResource.__table__, Resource.__table__
    return Need.id.in_(select(matches.c.need_id)
                       .join(resources, resources.c.id == matches.c.resource_id)
                       .where(resources.c.unit_id.in_(unit_ids), matches.c.deleted_on.is_(None))
                       .correlate(None))


def _community_of_need(need_id_column):
    return (select(Need.community_id).where(Need.id == need_id_column)
            .correlate_except(Need).scalar_subquery())


def _unit_of_resource(resource_id_column):
    return (select(Resource.unit_id).where(Resource.id == resource_id_column)
            .correlate_except(Resource).scalar_subquery())


class NeedResource(Entity):
    """资源对接: the joint body (the community's admins, 联合会) proposes a unit's published
    resource for a need, and the providing unit's liaison takes it on (认领) or declines."""

    __tablename__ = "need_resource"
    __table_args__ = live_order("need_resource", "created_on", "status")
    __label__ = N_("资源对接")
    __list_loads__ = ("need", "resource")
    __scope__ = Scope(org=(lambda: _community_of_need(NeedResource.need_id),),
                      unit=(lambda: _unit_of_resource(NeedResource.resource_id),))
    __choices__ = {
        "need": lambda: Need.status.not_in(NEED_CLOSED),
        "resource": lambda: Resource.status == ResourceStatus.PUBLISHED,
    }

    need_id = Column(Integer, ForeignKey("need.id"), nullable=False, index=True,
                     info=caption("需求"))
    resource_id = Column(Integer, ForeignKey("resource.id"), nullable=False, index=True,
                         info=caption("资源"))
    note = Column(Text, info=caption("提议说明"))
    status = Column(String(8), nullable=False, default=MatchStatus.PROPOSED, index=True,
                    info=caption("状态", choices=MATCH_STATUSES))
    answer = Column(Text, info=caption("认领或婉拒说明"))
    answered_on = Column(DateTime, info=caption("答复时间"))
    __mapper_args__ = status_is_version(status)

    need = relationship("Need", info=caption("需求"))
    resource = relationship("Resource", info=caption("资源"))

    def validate(self, session) -> None:
        if self.id is not None:
            return
        if self.resource is None or self.need is None:
            raise DomainError("请选择需求和资源", "resource")
        if self.resource.status != ResourceStatus.PUBLISHED:
            raise DomainError("只能提议已发布的资源", "resource")
        if self.need.status in NEED_CLOSED:
            raise DomainError(f"需求已{self.need.status}，不能再提议资源", "need")
        with unscoped():
            pending = session.execute(select(NeedResource.id).where(
                NeedResource.need_id == self.need.id, NeedResource.resource_id == self.resource.id,
                NeedResource.status != MatchStatus.DECLINED, NeedResource.deleted_on.is_(None),
                NeedResource.id.is_not(None)).limit(1)).first()
        if pending is not None:
            raise DomainError("该资源已提议给这项需求", "resource")

    def __str__(self) -> str:
        return f"{self.resource} → {self.need}"


class MicroWish(Entity):
    __tablename__ = "micro_wish"
    __table_args__ = live_order("micro_wish", "created_on", "status", "claimed_on", "fulfilled_on") + (
        # The dashboard's counts of each step per month, the rows under a node by their columns.
        live_index("micro_wish", "posted", "created_on", "status", "community_id", "deleted_on"),
        live_index("micro_wish", "claimed", "claimed_on", "community_id", "deleted_on"),
        live_index("micro_wish", "fulfilled", "fulfilled_on", "community_id", "deleted_on"))
    __label__ = N_("微心愿")
    __scope__ = Scope(
        org=(lambda: MicroWish.community_id, lambda: MicroWish.grid_id),
        shared=(
            # Published wishes are visible to (and, while 待认领, claimable by) the members and
            # liaisons of the same community.
            lambda p: _published_wish(p),
            lambda p: MicroWish.claimant_unit_id.in_(p.unit_ids) if p.unit_ids else None,
            lambda p: MicroWish.claimant_member_id.in_(p.member_ids) if p.member_ids else None,
        ),
    )
    __choices__ = {
        "community": lambda: Organization.type == "community",
        "grid": lambda: Organization.type.in_(("grid", "building")),
    }
    __audit_masked__ = frozenset({"resident_phone"})
    __past_work__ = WISH_PAST_WORK  # what an imported wish past 待审核 carries
    __revealing__ = ("resident_phone_shown",)
    __extra_labels__ = {"resident_name_masked": N_("居民"), "resident_phone_masked": N_("联系电话"),
                        "resident_phone_shown": N_("联系电话")}

    resident_name = Column(String(50), nullable=False, info=caption("居民姓名"))
    resident_phone = Column(String(30), info=caption("居民电话"))
    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("所在社区"))
    grid_id = Column(Integer, ForeignKey("organization.id"), nullable=True, index=True,
                     info=caption("所在网格"))
    content = Column(Text, nullable=False, info=caption("心愿内容"))
    status = Column(String(8), nullable=False, default=WishStatus.PENDING, index=True,
                    info=caption("状态", choices=WISH_STATUSES))
    reject_reason = Column(String(500), info=caption("驳回原因"))
    claimant_member_id = Column(Integer, ForeignKey("member.id"), nullable=True, index=True,
                                info=caption("认领党员"))
    claimant_unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                              info=caption("认领单位"))
    claimed_on = Column(DateTime, index=True, info=caption("认领时间"))
    fulfilled_on = Column(DateTime, index=True, info=caption("实现时间"))
    proof = Column(Text, info=caption("实现凭证"))
    feedback = Column(Text, info=caption("居民反馈"))
    confirmed_on = Column(DateTime, info=caption("确认时间"))
    # A wish posted on the public intake page: the resident follows it at /public/track/<code>.
    tracking_code = Column(String(32), nullable=True, unique=True, info=caption("查询码"))
    __mapper_args__ = status_is_version(status)

    community = relationship("Organization", foreign_keys=[community_id], info=caption("所在社区"))
    grid = relationship("Organization", foreign_keys=[grid_id], info=caption("所在网格"))
    claimant_member = relationship("Member", info=caption("认领党员"))
    claimant_unit = relationship("Unit", info=caption("认领单位"))

    @property
    def resident_name_masked(self) -> str:
        """Residents have no accounts; their names are shown masked (张*, 欧阳**)."""
        name = self.resident_name or ""
        return name[:1] + "*" * (len(name) - 1) if name else ""

    @property
    def resident_phone_masked(self) -> str:
        return validators.mask_phone(self.resident_phone)

    @property
    def resident_phone_shown(self) -> str:
        from app.models.org import shown_phone

        return shown_phone(self, self.resident_phone)

    def validate(self, session) -> None:
        if self.community is not None and self.community.type != "community":
            raise DomainError("所在社区必须是社区党组织", "community")
        _check_grid(self)

    def __str__(self) -> str:
        text = self.content or ""
        return text[:20] + ("…" if len(text) > 20 else "")

    @classmethod
    def __caption_sql__(cls, table):
        text = func.coalesce(table.c.content, "")
        # A 21st character (substr counts characters on every database, length not on MySQL).
        return func.substr(text, 1, 20) + case((func.substr(text, 21, 1) != "", "…"), else_="")


def _check_grid(row) -> None:
    """A need's or wish's grid lies in its community (the grid anchor places it there too)."""
    if row.grid is not None and row.community is not None and \
            not row.grid.path.startswith(row.community.path):
        raise DomainError("所在网格必须在所在社区之下", "grid")


def _dictionary(kind: str):
    return (Dictionary.kind == kind) & Dictionary.active


WISH_PUBLISHED = (WishStatus.OPEN, WishStatus.CLAIMED, WishStatus.FULFILLED, WishStatus.CONFIRMED)


def _published_wish(principal):
    """Once published, a wish stays in sight of its community's members and liaisons (who
    claimed it, and whether it came true, is public); only 待认领 ones can be claimed."""
    mine = in_own_communities(MicroWish.community_id, principal)
    return None if mine is None else and_(MicroWish.status.in_(WISH_PUBLISHED), mine)


def _offered_nearby(principal):
    """Members see (and log service against) the published items of their community's units.
    A liaison sees only its own unit's (issue 3): only the member part applies."""
    if not principal.member_ids:
        return None
    mine = in_own_communities(_community_of_unit(ServiceItem.provider_unit_id),
                              _as_member(principal))
    return and_(ServiceItem.status.in_((ServiceStatus.PUBLISHED, ServiceStatus.RUNNING, ServiceStatus.COMPLETED)), mine)


# What a unit may still change itself: a filed item is the reviewers' until withdrawn/rejected.
EDITABLE = (ResourceStatus.DRAFT, ResourceStatus.REJECTED, ResourceStatus.WITHDRAWN)
REVIEW_FIELDS = {"status", "reject_reason", "fulfilment", "changed_on", "changed_by_id",
                 "deleted_on", "deleted_by_id"}


def _check_reviewed(item, session) -> None:
    from sqlalchemy import inspect as sa_inspect

    principal = current_principal()
    if item.id is None or principal.sees_all or principal.org_paths or principal.system:
        return
    state = sa_inspect(item)
    status = state.attrs.status.history.deleted[0] if state.attrs.status.history.deleted else item.status
    changed = {a.key for a in state.attrs if a.history.has_changes()} - REVIEW_FIELDS
    if changed and status not in EDITABLE:
        raise DomainError("已提交审核或已发布的内容不能修改，请先撤回（或待驳回后）再改", "title")


def _as_member(principal):
    from dataclasses import replace

    return replace(principal, unit_ids=())


def _check_period(start, end) -> None:
    if start and end and end < start:
        raise DomainError("结束日期不能早于开始日期", "end_date")
