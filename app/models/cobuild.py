"""Co-building: agreements, dual registration (双报到), service posts and claims, service records,
the points ledger and star ratings (DOMAIN.md §1, §2)."""
from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    and_,
    case,
    event,
    exists,
    inspect,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import object_session, relationship
from sqlalchemy.orm.attributes import get_history, set_committed_value

from app import clock
from app.errors import DomainError
from app.i18n import N_
from app.models.base import (
    GLOBAL,
    Entity,
    ReviewedResult,
    Scope,
    caption,
    live_index,
    live_order,
    state_choices,
    status_is_version,
)
from app.models.lists import in_own_communities
from app.models.org import Dictionary, Member, Organization, Unit, UnitStatus, _exists
from app.security.principal import unscoped


class AgreementStatus(StrEnum):
    """The states of a co-building agreement; the values are what the database stores."""

    DRAFT = "草拟"
    SIGNED = "已签订"
    TERMINATED = "已终止"


class Validity(StrEnum):
    """A signed agreement's 有效状态, computed from its dates and today — never stored, so
    nobody has to click an agreement into 已到期."""

    PENDING = "未生效"
    VALID = "有效"
    EXPIRING = "即将到期"
    EXPIRED = "已到期"


class UnitRegistrationStatus(StrEnum):
    """The states of a unit's registration (单位报到); the values are what the database stores."""

    PENDING = "待确认"
    REGISTERED = "已报到"
    CANCELLED = "已注销"


class MemberRegistrationStatus(StrEnum):
    """The states of a member's registration (党员报到); the values are what the database stores."""

    PENDING = "待确认"
    REGISTERED = "已报到"
    TRANSFERRED = "已转出"
    CANCELLED = "已注销"


class ClaimStatus(StrEnum):
    """The states of a member's claim of a service post; the values are what the database stores."""

    CLAIMED = "已认领"
    WITHDRAWN = "已退出"


class RecordStatus(StrEnum):
    """The states of a service record's certification; the values are what the database stores."""

    PENDING = "待认证"
    CERTIFIED = "已认证"
    REJECTED = "已驳回"


class RatingStatus(StrEnum):
    """The states of a star rating's run, review and publication; the values are what the database stores."""

    COMPUTED = "已计算"
    REVIEWED = "已审核"
    PUBLISHED = "已公示"


AGREEMENT_STATUSES = state_choices(AgreementStatus)
VALIDITIES = state_choices(Validity)
UNIT_REGISTRATION_STATUSES = state_choices(UnitRegistrationStatus)
MEMBER_REGISTRATION_STATUSES = state_choices(MemberRegistrationStatus)
REGISTRATION_ACTIVE = (MemberRegistrationStatus.PENDING, MemberRegistrationStatus.REGISTERED)
CLAIM_STATUSES = state_choices(ClaimStatus)
RECORD_STATUSES = state_choices(RecordStatus)
SUBJECTS = {"member": N_("党员"), "unit": N_("驻区单位")}
# What earns points. Another area adds its own events here (e.g. a fulfilled micro-wish).
POINT_EVENTS = {"service_record": N_("服务记录认证")}
ENTRY_KINDS = {"pay": N_("记分"), "reverse": N_("冲正")}
PERIOD_KINDS = {"quarter": N_("季度"), "year": N_("年度")}
RATING_STATUSES = state_choices(RatingStatus)
# An agreement is flagged this many days before it ends (DOMAIN.md §2).
EXPIRY_WARNING_DAYS = 30

# The "三个一" of a county's agreements (DOMAIN.md §1), prefilled on every new agreement.
DEFAULT_COMMITMENTS = (
    "一、签订一份共驻共建协议，明确社区与驻区单位双方的责任和义务；\n"
    "二、每季度参加一次党建联席会议，季度研讨会和年度总结会由单位主要负责人（一把手）参加；\n"
    "三、每年为社区解决一批群众急难愁盼问题（数量见“年度解决问题目标”）；\n"
    "四、单位党组织向所在社区报到，在职党员向居住地社区报到，认领服务岗位、每月参加一次服务。"
)


def _looked_up(column, key):
    """`column` of the row whose id is the owner's `owner_id`: a correlated subquery that
    never correlates its own table, so that it holds in a query joining that table too."""
    table = column.class_
    return lambda owner_id: (select(column).where(getattr(table, key) == owner_id)
                             .correlate_except(table).scalar_subquery())


# A row placed by its member sits where that member does (home community, work unit); one
# placed by its unit or post, in that unit's or post's community.
_community_of_member = _looked_up(Member.community_id, "id")
_unit_of_member = _looked_up(Member.work_unit_id, "id")
# ... and in its 所在网格: the grid anchor of rows placed by their member.
_group_of_member = _looked_up(Member.group_id, "id")
_community_of_unit = _looked_up(Unit.community_id, "id")


def _require_community(org, label="社区") -> None:
    if org is None:
        raise DomainError(f"请选择{label}", "community")
    if org.type != "community":
        raise DomainError(f"{label}必须是社区党组织", "community")


def _defaults(obj) -> None:
    """Column defaults are applied by the INSERT; a new row's rules need them before (e.g. the
    status that decides its active key)."""
    if obj.id is None:
        for column in obj.__table__.columns:
            if column.default is not None and column.default.is_scalar \
                    and getattr(obj, column.key) is None:
                setattr(obj, column.key, column.default.arg)


def _load(session, obj, relation: str):
    """The related row, also when only its id was set (a service, an import). A row that was
    never read from the database (the API's stand-in for an id it could not find within the
    user's scope) does not exist."""
    prop = type(obj).__mapper__.relationships[relation]
    target = getattr(obj, relation)
    if target is not None and inspect(target).key is None:
        raise DomainError(f"所选{prop.info.get('label', relation)}不存在或超出您的数据范围",
                          relation)
    if target is None:
        pk = getattr(obj, next(iter(prop.local_columns)).key)
        if pk is not None:
            target = session.get(prop.mapper.class_, pk)
            if target is not None:
                setattr(obj, relation, target)
    return target


def _numbered(prefix: str, column: str, day_attr: str):
    """`after_insert`: a receipt or certificate number made of the year and the row's id —
    unique without a counter that two registrations could read at once."""
    def number(mapper, connection, row) -> None:
        day = getattr(row, day_attr) or clock.today()
        value = f"{prefix}{day.year}{row.id:06d}"
        table = mapper.local_table
        connection.execute(update(table).where(table.c.id == row.id).values({column: value}))
        set_committed_value(row, column, value)
    return number


# --- agreements ------------------------------------------------------------------------------

class Agreement(Entity):
    __tablename__ = "agreement"
    __table_args__ = live_order("agreement", "valid_to", "title", "valid_from", "status") + (
        # The dashboard's agreements signed, expiring and lapsed per community, and their
        # units' 三个一 per community (figures.py): every column either reads.
        live_index("agreement", "community", "community_id", "status", "signed_on", "valid_from",
                   "valid_to", "deleted_on", "unit_id", "yearly_target"),)
    __label__ = N_("共驻共建协议")
    __scope__ = Scope(org=(lambda: Agreement.community_id,), unit=(lambda: Agreement.unit_id,))
    __choices__ = {
        "community": lambda: Organization.type == "community",
        "unit": lambda: Unit.status == UnitStatus.REGISTERED,
    }
    __extra_labels__ = {"validity": N_("有效状态"), "expiring": N_("即将到期"),
                        "expiry_note": N_("到期提醒")}
    # Computed columns that take one of several values (filtered by value, not as a yes/no).
    __computed_choices__ = {"validity": VALIDITIES}

    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("社区"))
    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=False, index=True,
                     info=caption("驻区单位"))
    title = Column(String(200), index=True, nullable=False, info=caption("协议名称"))
    signed_on = Column(Date, info=caption("签订日期"))
    valid_from = Column(Date, index=True, nullable=False, info=caption("生效日期"))
    valid_to = Column(Date, nullable=False, index=True, info=caption("到期日期"))
    commitments = Column(Text, default=DEFAULT_COMMITMENTS, info=caption("承诺事项"))
    yearly_target = Column(Integer, nullable=False, default=0, info=caption("年度解决问题目标"))
    # The scanned signed file: stored under UPLOAD_FOLDER/agreements, named by the server.
    file_name = Column(String(200), info=caption("协议扫描件"))
    file_path = Column(String(255), info=caption("存储路径"))
    file_type = Column(String(8), info=caption("文件类型"))
    file_size = Column(Integer, info=caption("文件大小"))
    # The file itself, in the shared storage (app/storage.py). `file_path` named a file under
    # UPLOAD_FOLDER before issue 21; `flask gongjian init` moves such files into the storage.
    file_id = Column(Integer, ForeignKey("stored_file.id", ondelete="SET NULL"))
    file_uploaded_on = Column(DateTime, info=caption("上传时间"))
    status = Column(String(8), nullable=False, default=AgreementStatus.DRAFT, index=True,
                    info=caption("状态", choices=AGREEMENT_STATUSES))
    __mapper_args__ = status_is_version(status)
    terminate_reason = Column(String(500), info=caption("终止原因"))
    terminated_on = Column(Date, info=caption("终止日期"))

    community = relationship("Organization", info=caption("社区"))
    unit = relationship("Unit", info=caption("驻区单位"))

    @hybrid_property
    def validity(self) -> str | None:
        """有效状态 of a signed agreement (None for a draft or a terminated one)."""
        if self.status != AgreementStatus.SIGNED or self.valid_from is None or self.valid_to is None:
            return None
        today = clock.today()
        if self.valid_from > today:
            return Validity.PENDING
        if self.valid_to < today:
            return Validity.EXPIRED
        if self.valid_to <= today + timedelta(days=EXPIRY_WARNING_DAYS):
            return Validity.EXPIRING
        return Validity.VALID

    @validity.inplace.expression
    @classmethod
    def _validity_expression(cls):
        today = clock.today()
        return case((cls.status != AgreementStatus.SIGNED, null()),
                    (cls.valid_from > today, literal(Validity.PENDING.value)),
                    (cls.valid_to < today, literal(Validity.EXPIRED.value)),
                    (cls.valid_to <= today + timedelta(days=EXPIRY_WARNING_DAYS),
                     literal(Validity.EXPIRING.value)),
                    else_=literal(Validity.VALID.value))

    @hybrid_property
    def expiring(self) -> bool:
        """In force and ending within the warning period (DOMAIN.md §2)."""
        return self.validity == Validity.EXPIRING

    @expiring.inplace.expression
    @classmethod
    def _expiring_expression(cls):
        today = clock.today()
        return and_(cls.status == AgreementStatus.SIGNED, cls.valid_from <= today,
                    cls.valid_to >= today,
                    cls.valid_to <= today + timedelta(days=EXPIRY_WARNING_DAYS))

    @property
    def expiry_note(self) -> str:
        if not self.expiring:
            return ""
        days = (self.valid_to - clock.today()).days
        return "今天到期" if days == 0 else f"{days}天后到期"

    def validate(self, session) -> None:
        _defaults(self)
        _require_community(_load(session, self, "community"))
        if _load(session, self, "unit") is None:
            raise DomainError("请选择驻区单位", "unit")
        if self.valid_from is None or self.valid_to is None:
            raise DomainError("请填写协议的生效日期和到期日期", "valid_from")
        if self.valid_to < self.valid_from:
            raise DomainError("协议到期日期不能早于生效日期", "valid_to")
        if self.signed_on and self.signed_on > clock.today():
            raise DomainError("签订日期不能晚于今天", "signed_on")
        if (self.yearly_target or 0) < 0:
            raise DomainError("年度解决问题目标不能为负数", "yearly_target")
        if not (self.commitments or "").strip():
            self.commitments = DEFAULT_COMMITMENTS

    __caption__ = "title"


# --- dual registration (双报到) ----------------------------------------------------------------

class UnitRegistration(Entity):
    __tablename__ = "unit_registration"
    __table_args__ = live_order("unit_registration", "registered_on", "receipt_no", "status")
    __label__ = N_("单位报到")
    __scope__ = Scope(org=(lambda: UnitRegistration.community_id,),
                      unit=(lambda: UnitRegistration.unit_id,))
    __choices__ = {"unit": lambda: Unit.status == UnitStatus.REGISTERED}

    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=False, index=True,
                     info=caption("驻区单位"))
    # The community the unit stands in (taken from the unit): where it reports.
    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("报到社区"))
    registered_on = Column(Date, index=True, nullable=False, default=date.today,
                           info=caption("报到日期"))
    receipt_no = Column(String(32), nullable=True, unique=True, info=caption("回执编号"))
    status = Column(String(8), nullable=False, default=UnitRegistrationStatus.PENDING, index=True,
                    info=caption("状态", choices=UNIT_REGISTRATION_STATUSES))
    __mapper_args__ = status_is_version(status)
    confirmed_by_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("确认人"))
    confirmed_on = Column(DateTime, info=caption("确认时间"))
    cancel_reason = Column(String(500), info=caption("注销原因"))
    # One registration in force per unit (NULL once cancelled or deleted).
    active_key = Column(String(32), nullable=True, unique=True)

    unit = relationship("Unit", info=caption("驻区单位"))
    community = relationship("Organization", info=caption("报到社区"))

    def validate(self, session) -> None:
        _defaults(self)
        if _load(session, self, "unit") is None:
            raise DomainError("请选择驻区单位", "unit")
        if self.id is None or get_history(self, "unit").has_changes():
            self.community = self.unit.community
        if self.registered_on and self.registered_on > clock.today():
            raise DomainError("报到日期不能晚于今天", "registered_on")
        self.active_key = str(self.unit.id) if self.status in REGISTRATION_ACTIVE else None
        if self.active_key and _exists(session, select(UnitRegistration.id).where(
                UnitRegistration.active_key == self.active_key,
                UnitRegistration.id != (self.id or 0))):
            raise DomainError(f"“{self.unit.name}”已向社区报到（或正等待确认），不能重复报到", "unit")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.active_key = None

    def restore(self):
        super().restore()
        self.active_key = str(self.unit_id) if self.status in REGISTRATION_ACTIVE else None

    def __str__(self) -> str:
        return self.receipt_no or f"单位报到 #{self.id}"


def this_month() -> tuple[date, date]:
    today = clock.today()
    return today.replace(day=1), today


def served_between(member_id, first: date, last: date):
    """Whether the member has a service record dated within [first, last] that was not refused."""
    return exists().where(ServiceRecord.member_id == member_id,
                          ServiceRecord.served_on.between(first, last),
                          ServiceRecord.status != RecordStatus.REJECTED,
                          ServiceRecord.deleted_on.is_(None))


class MemberRegistration(Entity):
    __tablename__ = "member_registration"
    __table_args__ = live_order("member_registration", "registered_on", "certificate_no", "status") + (
        # registrations per community (报到率, monthly service) and per member (the star rating)
        live_index("member_registration", "community", "community_id", "status", "registered_on",
                   "member_id"),
        live_index("member_registration", "member", "member_id", "community_id", "status",
                   "registered_on"))
    __label__ = N_("党员报到")
    __extra_labels__ = {"served_this_month": N_("本月已服务")}
    __scope__ = Scope(org=(lambda: MemberRegistration.community_id,
                           lambda: _group_of_member(MemberRegistration.member_id)),
                      unit=(lambda: _unit_of_member(MemberRegistration.member_id),),
                      member=(lambda: MemberRegistration.member_id,))
    __choices__ = {
        "community": lambda: Organization.type == "community",
        "group": lambda: Organization.type.in_(("grid", "building", "household")),
    }

    member_id = Column(Integer, ForeignKey("member.id"), nullable=False, index=True,
                       info=caption("党员"))
    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("报到社区"))
    group_id = Column(Integer, ForeignKey("organization.id"), nullable=True, index=True,
                      info=caption("加入的楼栋/小区党小组"))
    registered_on = Column(Date, index=True, nullable=False, default=date.today,
                           info=caption("报到日期"))
    certificate_no = Column(String(32), nullable=True, unique=True, info=caption("报到证编号"))
    status = Column(String(8), nullable=False, default=MemberRegistrationStatus.PENDING, index=True,
                    info=caption("状态", choices=MEMBER_REGISTRATION_STATUSES))
    __mapper_args__ = status_is_version(status)
    confirmed_by_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("确认人"))
    confirmed_on = Column(DateTime, info=caption("确认时间"))
    transferred_on = Column(Date, info=caption("转出日期"))
    transfer_note = Column(String(500), info=caption("转出说明"))
    cancel_reason = Column(String(500), info=caption("注销原因"))
    # One registration in force per member (NULL once transferred out, cancelled or deleted).
    active_key = Column(String(32), nullable=True, unique=True)

    member = relationship("Member", info=caption("党员"))
    community = relationship("Organization", foreign_keys=[community_id], info=caption("报到社区"))
    group = relationship("Organization", foreign_keys=[group_id],
                         info=caption("加入的楼栋/小区党小组"))

    @hybrid_property
    def served_this_month(self) -> bool:
        """A registered member serves once a month (双报到's 三个一): a service record dated
        this month (in GONGJIAN_TIMEZONE), not refused."""
        return bool(object_session(self).scalar(select(served_between(
            self.member_id, *this_month()))))

    @served_this_month.inplace.expression
    @classmethod
    def _served_this_month_expression(cls):
        return served_between(cls.member_id, *this_month())

    def validate(self, session) -> None:
        _defaults(self)
        if _load(session, self, "member") is None:
            raise DomainError("请选择党员", "member")
        if _load(session, self, "community") is None:
            self.community = self.member.community
        _require_community(self.community, "报到社区")
        if _load(session, self, "group") is not None and not self.group.path.startswith(self.community.path):
            raise DomainError("加入的党小组必须在报到社区之下", "group")
        if self.registered_on and self.registered_on > clock.today():
            raise DomainError("报到日期不能晚于今天", "registered_on")
        self.active_key = str(self.member.id) if self.status in REGISTRATION_ACTIVE else None
        if not self.active_key:
            return
        with unscoped():
            other = session.execute(select(MemberRegistration).where(
                MemberRegistration.active_key == self.active_key,
                MemberRegistration.id != (self.id or 0))).scalars().first()
        if other is not None:
            if other.community_id == self.community.id:
                raise DomainError(f"{self.member.name}已在本社区报到（或正等待确认），不能重复报到",
                                  "member")
            raise DomainError(f"{self.member.name}已在“{other.community.name}”报到，"
                              "须先办理转出才能在其他社区报到", "member")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.active_key = None

    def restore(self):
        super().restore()
        self.active_key = str(self.member_id) if self.status in REGISTRATION_ACTIVE else None

    def __str__(self) -> str:
        return self.certificate_no or f"党员报到 #{self.id}"


event.listen(UnitRegistration, "after_insert", _numbered("DW", "receipt_no", "registered_on"))
event.listen(MemberRegistration, "after_insert",
             _numbered("DY", "certificate_no", "registered_on"))


# --- service posts and claims ------------------------------------------------------------------

class ServicePost(Entity):
    __tablename__ = "service_post"
    __table_args__ = live_order("service_post", "name", "headcount", "claimed")
    __label__ = N_("服务岗位")
    __scope__ = Scope(
        org=(lambda: ServicePost.community_id,),
        # Visible to the members living in the community (who claim them) and its units.
        shared=(lambda p: in_own_communities(ServicePost.community_id, p),),
    )
    __choices__ = {
        "community": lambda: Organization.type == "community",
        "category": lambda: (Dictionary.kind == "post_category") & Dictionary.active,
    }

    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("社区"))
    name = Column(String(100), index=True, nullable=False, info=caption("岗位名称"))
    category_id = Column(Integer, ForeignKey("dictionary.id"), nullable=False, index=True,
                         info=caption("岗位类别"))
    skill = Column(String(100), info=caption("所需技能"))
    headcount = Column(Integer, index=True, nullable=False, default=1, info=caption("岗位人数"))
    # Kept by the claims themselves with a compare-and-set (never counted by reading).
    claimed = Column(Integer, index=True, nullable=False, default=0, info=caption("已认领人数"))
    description = Column(Text, info=caption("岗位职责"))
    active = Column(Boolean, index=True, nullable=False, default=True, info=caption("开放认领"))

    community = relationship("Organization", info=caption("社区"))
    category = relationship("Dictionary", info=caption("岗位类别"))

    def validate(self, session) -> None:
        _defaults(self)
        _require_community(_load(session, self, "community"))
        if self.headcount is None or self.headcount < 1:
            raise DomainError("岗位人数至少为1人", "headcount")
        if self.id is not None:
            table = ServicePost.__table__
            claimed = session.execute(select(table.c.claimed).where(table.c.id == self.id)).scalar()
            if self.headcount < (claimed or 0):
                raise DomainError(f"岗位人数不能少于已认领人数（{claimed}人）", "headcount")

    def check_delete(self, session) -> None:
        if _exists(session, select(PostClaim.id).where(PostClaim.post_id == self.id,
                                                         PostClaim.status == ClaimStatus.CLAIMED,
                                                         PostClaim.deleted_on.is_(None))):
            raise DomainError(f"“{self.name}”还有党员在岗，不能删除；可改为不开放认领")

    __caption__ = "name"


_community_of_post = _looked_up(ServicePost.community_id, "id")


class PostClaim(Entity):
    __tablename__ = "post_claim"
    __table_args__ = live_order("post_claim", "claimed_on", "status")
    __label__ = N_("岗位认领")
    __list_loads__ = ("member", "post")
    __scope__ = Scope(
        org=(lambda: _community_of_post(PostClaim.post_id),),
        unit=(lambda: _unit_of_member(PostClaim.member_id),),
        member=(lambda: PostClaim.member_id,),
    )
    __choices__ = {"post": lambda: ServicePost.active}

    member_id = Column(Integer, ForeignKey("member.id"), nullable=False, index=True,
                       info=caption("党员"))
    post_id = Column(Integer, ForeignKey("service_post.id"), nullable=False, index=True,
                     info=caption("服务岗位"))
    claimed_on = Column(Date, index=True, nullable=False, default=date.today, info=caption("认领日期"))
    status = Column(String(8), nullable=False, default=ClaimStatus.CLAIMED, index=True,
                    info=caption("状态", choices=CLAIM_STATUSES))
    __mapper_args__ = status_is_version(status)
    withdrawn_on = Column(Date, info=caption("退出日期"))
    # One claim in force per member and post (NULL once withdrawn or deleted).
    active_key = Column(String(32), nullable=True, unique=True)

    member = relationship("Member", info=caption("党员"))
    post = relationship("ServicePost", info=caption("服务岗位"))

    def validate(self, session) -> None:
        _defaults(self)
        if _load(session, self, "member") is None or _load(session, self, "post") is None:
            raise DomainError("请选择党员和服务岗位", "post")
        if self.id is not None:
            if get_history(self, "member").has_changes() or get_history(self, "post").has_changes():
                raise DomainError("认领记录不能更换党员或岗位；请退出后重新认领", "post")
            self.active_key = self._key() if self.status == ClaimStatus.CLAIMED else None
            return
        if self.post.community_id not in _communities_of(session, self.member):
            raise DomainError(f"“{self.post.name}”不在{self.member.name}居住或报到的社区，"
                              "不能认领", "post")
        self.active_key = self._key()
        if self._held(session):
            raise DomainError(f"{self.member.name}已认领“{self.post.name}”，不能重复认领", "post")
        self.take_place(session)
        # The compare-and-set above waited for any claim of this post under way: look again,
        # reading what they committed (a locking read, also under MariaDB's snapshot).
        if self._held(session, locking=True):
            raise DomainError(f"{self.member.name}已认领“{self.post.name}”，不能重复认领", "post")

    def _key(self) -> str:
        return f"{self.post.id}:{self.member.id}"

    def _held(self, session, locking=False) -> bool:
        stmt = select(PostClaim.id).where(PostClaim.active_key == self.active_key)
        if locking:
            stmt = stmt.with_for_update()
        with unscoped():
            return session.execute(stmt.limit(1)).first() is not None

    def take_place(self, session) -> None:
        """Take one of the post's places: a compare-and-set on its count, so that claims made
        at the same time never exceed the headcount (on every database)."""
        table = ServicePost.__table__
        taken = session.execute(
            update(table)
            .where(table.c.id == self.post.id, table.c.claimed < table.c.headcount,
                   table.c.active == True, table.c.deleted_on.is_(None))
            .values(claimed=table.c.claimed + 1),
            execution_options={"synchronize_session": False}).rowcount
        if taken != 1:
            if not self.post.active:
                raise DomainError(f"“{self.post.name}”已停止认领", "post")
            raise DomainError(f"“{self.post.name}”的{self.post.headcount}个名额已满，不能再认领",
                              "post")

    def free_place(self, session) -> None:
        table = ServicePost.__table__
        session.execute(update(table).where(table.c.id == self.post_id, table.c.claimed > 0)
                        .values(claimed=table.c.claimed - 1),
                        execution_options={"synchronize_session": False})

    def check_delete(self, session) -> None:
        if self.status == ClaimStatus.CLAIMED:
            raise DomainError("该党员仍在岗，请先办理退出认领，再删除")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.active_key = None

    def __str__(self) -> str:
        member = self.member.name if self.member else ""
        post = self.post.name if self.post else ""
        return f"{member}认领{post}"


def _communities_of(session, member) -> set:
    """Where a member may claim posts: the home community and the one registered in."""
    with unscoped():
        registered = session.execute(select(MemberRegistration.community_id).where(
            MemberRegistration.member_id == member.id,
            MemberRegistration.status.in_(REGISTRATION_ACTIVE),
            MemberRegistration.deleted_on.is_(None))).scalars().all()
    return {member.community_id, *registered}


# --- service records --------------------------------------------------------------------------

class ServiceRecord(Entity):
    __tablename__ = "service_record"
    __table_args__ = live_order("service_record", "served_on", "hours", "status") + (
        # a member's records in a span of days (monthly service: one probe per registration)
        live_index("service_record", "member_served", "member_id", "served_on", "status"),)
    __label__ = N_("服务记录")
    __list_loads__ = ("member", "post", "service_item", "need", "micro_wish")
    __scope__ = Scope(org=(lambda: _community_of_member(ServiceRecord.member_id),
                           lambda: _group_of_member(ServiceRecord.member_id)),
                      unit=(lambda: _unit_of_member(ServiceRecord.member_id),),
                      member=(lambda: ServiceRecord.member_id,))
    __choices__ = {"post": lambda: ServicePost.active}
    __extra_labels__ = {"served_what": N_("服务对象")}
    # What a certified record may no longer change: revoke the certification first.
    FROZEN = ("member", "served_on", "hours", "post", "service_item", "need", "micro_wish",
              "description")

    member_id = Column(Integer, ForeignKey("member.id"), nullable=False, index=True,
                       info=caption("党员"))
    served_on = Column(Date, nullable=False, index=True, info=caption("服务日期"))
    hours = Column(Numeric(5, 1), index=True, nullable=False, info=caption("服务时长（小时）"))
    description = Column(Text, info=caption("服务内容"))
    post_id = Column(Integer, ForeignKey("service_post.id"), nullable=True, index=True,
                     info=caption("服务岗位"))
    service_item_id = Column(Integer, ForeignKey("service_item.id"), nullable=True, index=True,
                             info=caption("服务项目"))
    need_id = Column(Integer, ForeignKey("need.id"), nullable=True, index=True,
                     info=caption("需求"))
    micro_wish_id = Column(Integer, ForeignKey("micro_wish.id"), nullable=True, index=True,
                           info=caption("微心愿"))
    status = Column(String(8), nullable=False, default=RecordStatus.PENDING, index=True,
                    info=caption("状态", choices=RECORD_STATUSES))
    __mapper_args__ = status_is_version(status)
    certified_by_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True,
                             info=caption("认证人"))
    certified_on = Column(DateTime, info=caption("认证时间"))
    reject_reason = Column(String(500), info=caption("驳回原因"))
    revoke_reason = Column(String(500), info=caption("撤销认证原因"))
    # How many times it has been certified: each certification is one payment cycle of the
    # ledger (a reversal closes it, a new certification opens the next).
    pay_cycle = Column(Integer, nullable=False, default=0, info=caption("认证次数"))

    member = relationship("Member", info=caption("党员"))
    post = relationship("ServicePost", info=caption("服务岗位"))
    service_item = relationship("ServiceItem", info=caption("服务项目"))
    need = relationship("Need", info=caption("需求"))
    micro_wish = relationship("MicroWish", info=caption("微心愿"))

    SERVED_WHAT = (("岗位", "post"), ("项目", "service_item"), ("需求", "need"),
                   ("微心愿", "micro_wish"))

    @property
    def served_what(self) -> str:
        for label, relation in self.SERVED_WHAT:
            target = getattr(self, relation)
            if target is not None:
                return f"{label}：{target}"
        return "其他服务"

    @staticmethod
    def _served_what_sql(caption):
        """`served_what` in SQL, from `caption(relation)`: the related row's caption, or NULL."""
        captions = [(label, caption(relation)) for label, relation in ServiceRecord.SERVED_WHAT]
        return case(*[(c.is_not(None), literal(f"{label}：", String) + c) for label, c in captions],
                    else_=literal("其他服务", String))

    __sql_columns__ = {"served_what": _served_what_sql}

    def validate(self, session) -> None:
        _defaults(self)
        if _load(session, self, "member") is None:
            raise DomainError("请选择党员", "member")
        if self.served_on is None:
            raise DomainError("请填写服务日期", "served_on")
        if self.served_on > clock.today():
            raise DomainError("服务日期不能晚于今天", "served_on")
        if self.hours is None or self.hours <= 0:
            raise DomainError("服务时长必须大于0小时", "hours")
        if self.hours > 24:
            raise DomainError("单次服务时长不能超过24小时", "hours")
        targets = [t for t in (_load(session, self, name) for name in
                               ("post", "service_item", "need", "micro_wish")) if t is not None]
        if len(targets) > 1:
            raise DomainError("一条服务记录只能对应一个岗位、项目、需求或微心愿", "post")
        if self.id is not None and self.status == RecordStatus.CERTIFIED \
                and not get_history(self, "status").has_changes() \
                and any(get_history(self, key).has_changes() for key in self.FROZEN):
            raise DomainError("已认证的服务记录不能修改；如需更正，请先撤销认证", "hours")

    def __str__(self) -> str:
        member = self.member.name if self.member else ""
        return f"{member} {self.served_on or ''} {self.hours or ''}小时"


# --- points ---------------------------------------------------------------------------------

class PointRule(Entity):
    __tablename__ = "point_rule"
    __table_args__ = live_order("point_rule", "code", "name")
    __label__ = N_("积分规则")
    __scope__ = GLOBAL

    code = Column(String(32), nullable=False, unique=True, info=caption("规则编码"))
    name = Column(String(100), index=True, nullable=False, info=caption("规则名称"))
    subject = Column(String(8), index=True, nullable=False, default="member",
                     info=caption("积分对象", choices=SUBJECTS))
    event = Column(String(32), index=True, nullable=False, default="service_record",
                   info=caption("记分事项", choices=POINT_EVENTS))
    points_per_event = Column(Numeric(8, 2), nullable=False, default=0, info=caption("每次积分"))
    points_per_hour = Column(Numeric(8, 2), nullable=False, default=0, info=caption("每小时积分"))
    description = Column(Text, info=caption("说明"))
    active = Column(Boolean, index=True, nullable=False, default=True, info=caption("启用"))

    def validate(self, session) -> None:
        _defaults(self)
        if (self.points_per_event or 0) < 0 or (self.points_per_hour or 0) < 0:
            raise DomainError("积分不能为负数", "points_per_event")
        if not (self.points_per_event or 0) and not (self.points_per_hour or 0):
            raise DomainError("请填写每次积分或每小时积分", "points_per_event")
        if _exists(session, select(PointRule.id).where(PointRule.code == self.code,
                                                        PointRule.id != (self.id or 0))):
            raise DomainError(f"规则编码“{self.code}”已被使用", "code")

    def points_for(self, hours) -> Decimal:
        return (Decimal(self.points_per_event or 0)
                + Decimal(self.points_per_hour or 0) * Decimal(hours or 0)).quantize(Decimal("0.01"))


class PointEntry(Entity):
    """The ledger: append-only. For each (source, subject, rule) the net of the entries is
    never more than one payment; the unique `entry_key` (source, subject, rule, payment cycle,
    kind) makes a second payment of the same cycle impossible, whatever the code does."""

    __tablename__ = "point_entry"
    __table_args__ = live_order("point_entry", "created_on", "delta", "period")
    __label__ = N_("积分流水")
    __list_loads__ = ("member", "unit")
    __scope__ = Scope(
        # The subject's community, and the community whose admin booked it.
        org=(lambda: _community_of_member(PointEntry.member_id),
             lambda: _community_of_unit(PointEntry.unit_id),
             lambda: PointEntry.community_id),
        unit=(lambda: PointEntry.unit_id, lambda: _unit_of_member(PointEntry.member_id)),
        member=(lambda: PointEntry.member_id,),
    )
    __extra_labels__ = {"subject_name": N_("积分对象"), "source": N_("来源记录")}

    subject_type = Column(String(8), index=True, nullable=False,
                          info=caption("对象类型", choices=SUBJECTS))
    member_id = Column(Integer, ForeignKey("member.id"), nullable=True, index=True,
                       info=caption("党员"))
    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                     info=caption("驻区单位"))
    rule_id = Column(Integer, ForeignKey("point_rule.id"), nullable=False, index=True,
                     info=caption("积分规则"))
    kind = Column(String(8), index=True, nullable=False, info=caption("类型", choices=ENTRY_KINDS))
    delta = Column(Numeric(10, 2), index=True, nullable=False, info=caption("积分变动"))
    reason = Column(String(200), info=caption("事由"))
    source_type = Column(String(32), nullable=False, info=caption("来源类型"))
    source_id = Column(Integer, nullable=False, info=caption("来源编号"))
    cycle = Column(Integer, nullable=False, default=1, info=caption("认证批次"))
    period = Column(String(8), nullable=False, index=True, info=caption("所属期间"))
    community_id = Column(Integer, ForeignKey("organization.id"), nullable=True, index=True,
                          info=caption("记分社区"))
    operator_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("经办人"))
    entry_key = Column(String(160), nullable=False, unique=True)

    member = relationship("Member", info=caption("党员"))
    unit = relationship("Unit", info=caption("驻区单位"))
    rule = relationship("PointRule", info=caption("积分规则"))
    community = relationship("Organization", info=caption("记分社区"))

    @staticmethod
    def key(source_type, source_id, subject_type, subject_id, rule_id, cycle, kind) -> str:
        return f"{source_type}:{source_id}:{subject_type}:{subject_id}:{rule_id}:{cycle}:{kind}"

    @property
    def subject_name(self) -> str:
        subject = self.member if self.subject_type == "member" else self.unit
        return str(subject) if subject is not None else ""

    @property
    def source(self) -> str:
        label = {"service_record": "服务记录"}.get(self.source_type, self.source_type)
        return f"{label} #{self.source_id}"

    def validate(self, session) -> None:
        _defaults(self)
        if self.id is not None:
            raise DomainError("积分流水只能追加，不能修改；如需更正，请冲正后重新记分")
        subject_id = self.member_id if self.subject_type == "member" else self.unit_id
        if subject_id is None:
            raise DomainError("积分对象不能为空")
        self.entry_key = PointEntry.key(self.source_type, self.source_id, self.subject_type,
                                        subject_id, self.rule_id, self.cycle, self.kind)

    def check_delete(self, session) -> None:
        raise DomainError("积分流水只能追加，不能删除；如需更正，请冲正")

    def __str__(self) -> str:
        return f"{self.subject_name} {self.delta:+}"


@event.listens_for(PointEntry, "before_update")
@event.listens_for(PointEntry, "before_delete")
def _append_only(mapper, connection, entry) -> None:
    """The last guard of the ledger, whoever flushes (forms, API, services, the CLI)."""
    raise DomainError("积分流水只能追加，不能修改或删除")


# --- star ratings ---------------------------------------------------------------------------

class StarRating(ReviewedResult, Entity):
    __tablename__ = "star_rating"
    __table_args__ = live_order("star_rating", "score", "period", "stars", "status")
    __label__ = N_("星级评定")
    __list_loads__ = ("unit", "member")
    __scope__ = Scope(
        org=(lambda: _community_of_unit(StarRating.unit_id),
             lambda: _community_of_member(StarRating.member_id)),
        unit=(lambda: StarRating.unit_id, lambda: _unit_of_member(StarRating.member_id)),
        member=(lambda: StarRating.member_id,),
    )
    __extra_labels__ = {"subject_name": N_("评定对象"), "inputs_text": N_("评分构成"),
                        "thresholds_text": N_("星级标准"), "stars_text": N_("星级")}

    subject_type = Column(String(8), nullable=False, index=True,
                          info=caption("对象类型", choices=SUBJECTS))
    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                     info=caption("驻区单位"))
    member_id = Column(Integer, ForeignKey("member.id"), nullable=True, index=True,
                       info=caption("党员"))
    period = Column(String(8), nullable=False, index=True, info=caption("评定期间"))
    period_kind = Column(String(8), nullable=False, info=caption("期间类型", choices=PERIOD_KINDS))
    score = Column(Numeric(6, 2), index=True, nullable=False, default=0, info=caption("得分"))
    stars = Column(Integer, index=True, nullable=True, info=caption("星级"))
    eligible = Column(Boolean, nullable=False, default=True, info=caption("参评"))
    note = Column(String(500), info=caption("说明"))
    # JSON: each weighted input's value and weight, and the thresholds in force.
    inputs = Column(Text, info=caption("评分构成"))
    thresholds = Column(Text, info=caption("星级标准"))
    status = Column(String(8), nullable=False, default=RatingStatus.COMPUTED, index=True,
                    info=caption("状态", choices=RATING_STATUSES))
    __mapper_args__ = status_is_version(status)
    # One rating per subject and period.
    rating_key = Column(String(64), nullable=False, unique=True)

    unit = relationship("Unit", info=caption("驻区单位"))
    member = relationship("Member", info=caption("党员"))

    @property
    def subject_name(self) -> str:
        subject = self.unit if self.subject_type == "unit" else self.member
        return str(subject) if subject is not None else ""

    @property
    def stars_text(self) -> str:
        return "★" * self.stars if self.stars else "不予评星"

    @property
    def inputs_text(self) -> str:
        parts = []
        for item in json.loads(self.inputs or "[]"):
            value = item.get("value")
            shown = "—" if value is None else f"{value * 100:.1f}%"
            parts.append(f"{item['label']} {shown}（权重 {item['weight']}）")
        return "；".join(parts)

    @property
    def thresholds_text(self) -> str:
        table = json.loads(self.thresholds or "{}")
        stars = table.get("stars", {})
        text = "，".join(f"{s}星≥{stars[s]}分" for s in sorted(stars, reverse=True))
        if table.get("floor") is not None:
            text += f"；单位报到率、服务完成率低于{table['floor'] * 100:g}%不予评星"
        return text

    def validate(self, session) -> None:
        _defaults(self)
        subject_id = self.unit_id if self.subject_type == "unit" else self.member_id
        if subject_id is None:
            raise DomainError("评定对象不能为空")
        if self.stars is not None and not 1 <= self.stars <= 5:
            raise DomainError("星级应为1到5星")
        self.rating_key = f"{self.subject_type}:{subject_id}:{self.period}"

    def __str__(self) -> str:
        return f"{self.subject_name} {self.period}"

