"""The organisation tree, resident units, Party members and the data dictionary."""
from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    func,
    select,
    true,
    update,
)
from sqlalchemy.orm import relationship
from sqlalchemy.orm.attributes import get_history, set_committed_value

from app import crypto, validators
from app.errors import DomainError
from app.i18n import N_
from app.models.base import GLOBAL, Entity, Scope, caption, live_index, live_order, state_choices
from app.security.principal import current_principal, owner_clause, sees_personal_data, unscoped

# Node types, top to bottom. Codes are the code's; labels the UI's (workflow states and
# structural types are code, categories are dictionary data: DOMAIN.md §2).
ORG_TYPES = {
    "district": N_("区委"),
    "street": N_("街道党工委"),
    "community": N_("社区党组织"),
    "grid": N_("网格党支部"),
    "building": N_("楼栋党小组"),
    "household": N_("党员中心户"),
}
GRID_KINDS = {"城市": N_("城市"), "农村": N_("农村"), "专属": N_("专属")}
PARTY_ORG_TYPES = {"党委": N_("党委"), "党总支": N_("党总支"), "党支部": N_("党支部"), "联合党支部": N_("联合党支部")}
class UnitStatus(StrEnum):
    """The states of a resident unit's standing in the register; the values are what the database stores."""

    REGISTERED = "在册"
    CANCELLED = "已注销"


class MemberStatus(StrEnum):
    """The states of a member's standing; the values are what the database stores."""

    ACTIVE = "正常"
    SUSPENDED = "停止党籍"
    TRANSFERRED = "已转出"
    DECEASED = "已故"


UNIT_STATUSES = state_choices(UnitStatus)
_TYPE_ORDER = {code: i for i, code in enumerate(ORG_TYPES)}
GENDERS = {"男": N_("男"), "女": N_("女")}
MEMBER_CATEGORIES = {"在职": N_("在职"), "退休": N_("退休"), "流动": N_("流动"), "在籍": N_("在籍")}
MEMBER_STATUSES = state_choices(MemberStatus)


class Organization(Entity):
    __tablename__ = "organization"
    __table_args__ = live_order("organization", "path", "name", "code", "type")
    __label__ = N_("党组织")
    # The tree itself is a directory every logged-in role may read. A subtree admin manages the
    # nodes below its own node: a node is placed by its parent.
    __scope__ = Scope(org=(lambda: Organization.parent_id,), directory=True)
    __choices__ = {"parent": lambda: Organization.type != "household"}

    parent_id = Column(Integer, ForeignKey("organization.id"), nullable=True, index=True,
                       info=caption("上级组织"))
    # Materialised path of ids, "/1/5/23/": a subtree is `path LIKE '/1/5/%'`.
    path = Column(String(255), nullable=False, default="", index=True, info=caption("路径"))
    depth = Column(Integer, nullable=False, default=0, info=caption("层级"))
    type = Column(String(16), nullable=False, index=True, info=caption("组织类型", choices=ORG_TYPES))
    code = Column(String(32), nullable=False, unique=True, info=caption("组织编码"))
    name = Column(String(100), nullable=False, index=True, info=caption("组织名称"))
    # The area's name (工农社区 for 工农社区党总支): offices name a community either way, and
    # an import matches both.
    short_name = Column(String(50), info=caption("简称"))
    secretary = Column(String(50), index=True, info=caption("书记"))
    phone = Column(String(30), info=caption("联系电话"))
    address = Column(String(200), info=caption("地址"))
    grid_kind = Column(String(8), info=caption("网格类型", choices=GRID_KINDS))
    active = Column(Boolean, index=True, nullable=False, default=True, info=caption("启用"))

    parent = relationship("Organization", remote_side="Organization.id", backref="children",
                          info=caption("上级组织"))

    __extra_labels__ = {"phone_shown": N_("联系电话"), "phone_masked": N_("联系电话")}
    # Columns that show personal data in full to whom may see it (exports record their reveal).
    __revealing__ = ("phone_shown",)
    # ... and how the database writes them in an export (app/exports.py `_cell_sql`).
    __sql_columns__ = {"phone_shown": lambda caption: shown_phone_sql(Organization,
                                                                       Organization.phone)}

    # The directory's phones, as a member's (DOMAIN.md §6): masked in lists, in full on a
    # node's own page and in exports only to roles that reveal personal data, and only on
    # the nodes they own (a node read through the directory shows them masked).
    @property
    def phone_shown(self) -> str:
        return shown_phone(self, self.phone)

    @property
    def phone_masked(self) -> str:
        return validators.mask_phone(self.phone)


    def validate(self, session) -> None:
        if self.type not in ORG_TYPES:
            raise DomainError("组织类型无效", "type")
        parent = self.parent
        if parent is None:
            if self.type != "district":
                raise DomainError("只有区委可以作为顶级组织，请选择上级组织", "parent")
        else:
            if parent.is_deleted:
                raise DomainError("上级组织已删除", "parent")
            if _TYPE_ORDER[self.type] <= _TYPE_ORDER[parent.type]:
                raise DomainError(f"{ORG_TYPES[self.type]}不能设在{ORG_TYPES[parent.type]}之下："
                                  "下级组织的类型须低于上级", "parent")
            if self.id is not None and (parent.id == self.id
                                        or parent.path.startswith(self.path or "\0")):
                raise DomainError("不能把组织移动到它自身或它的下级组织之下", "parent")
        # Retyped, a node must still stand above its children (the same rule, seen from below).
        if self.id is not None and get_history(self, "type").has_changes() and _exists(
                session, select(Organization.id).where(
                    Organization.parent_id == self.id, Organization.deleted_on.is_(None),
                    Organization.type.in_([t for t, order in _TYPE_ORDER.items()
                                           if order <= _TYPE_ORDER[self.type]]))):
            raise DomainError(f"“{self.name}”下有不低于{ORG_TYPES[self.type]}的下级组织，不能改为"
                              f"{ORG_TYPES[self.type]}：下级组织的类型须低于上级", "type")
        # Units and members name their community: it must stay one.
        if (self.id is not None and self.type != "community"
                and get_history(self, "type").deleted == ["community"]
                and (_exists(session, select(Unit.id).where(Unit.community_id == self.id,
                                                            Unit.deleted_on.is_(None)))
                     or _exists(session, select(Member.id).where(
                         Member.community_id == self.id, Member.deleted_on.is_(None))))):
            raise DomainError(f"“{self.name}”下有驻区单位或居住党员，不能改为其他类型", "type")
        if self.type != "grid":
            self.grid_kind = None
        if _exists(session, select(Organization.id).where(
                Organization.code == self.code, Organization.id != (self.id or 0))):
            raise DomainError(f"组织编码“{self.code}”已被使用", "code")
        # Compare paths, not the history of parent_id: forms and the API set the `parent`
        # relationship, and the column only follows it during the flush.
        if self.id is not None and parent is not None and self.path != f"{parent.path}{self.id}/":
            self._move_subtree(session)

    def _move_subtree(self, session) -> None:
        """Moving a node carries its subtree: rewrite the descendants' paths by prefix."""
        old_path, new_path = self.path, f"{self.parent.path}{self.id}/"
        delta = self.parent.depth + 1 - self.depth
        table = Organization.__table__
        session.execute(
            update(table)
            .where(table.c.path.like(old_path + "%"), table.c.id != self.id)
            .values(path=new_path + func.substr(table.c.path, len(old_path) + 1),
                    depth=table.c.depth + delta),
            execution_options={"synchronize_session": False},
        )
        self.path, self.depth = new_path, self.parent.depth + 1

    def check_delete(self, session) -> None:
        checks = [
            (select(Organization.id).where(Organization.parent_id == self.id,
                                           Organization.deleted_on.is_(None)), "下级组织"),
            (select(Unit.id).where(Unit.community_id == self.id, Unit.deleted_on.is_(None)),
             "驻区单位"),
            (select(Member.id).where((Member.community_id == self.id) | (Member.group_id == self.id),
                                     Member.deleted_on.is_(None)), "党员"),
        ]
        for stmt, what in checks:
            if _exists(session, stmt):
                raise DomainError(f"“{self.name}”下还有{what}，不能删除；请先移走或删除它们")

    __caption__ = "name"


class Dictionary(Entity):
    __tablename__ = "dictionary"
    __label__ = N_("数据字典")
    __scope__ = GLOBAL
    __table_args__ = (Index("uq_dictionary_kind_code", "kind", "code", unique=True),
                      *live_order("dictionary", "order", "kind", "code", "label"))

    KINDS = {
        "unit_category": N_("单位类别"),
        "resource_category": N_("资源类别"),
        "need_category": N_("需求类别"),
        "post_category": N_("岗位类别"),
        "member_skill": N_("党员技能"),
    }

    kind = Column(String(32), nullable=False, index=True, info=caption("字典类型", choices=KINDS))
    code = Column(String(32), index=True, nullable=False, info=caption("编码"))
    label = Column(String(64), index=True, nullable=False, info=caption("名称"))
    # Other words offices use for the entry (机关 for 党政机关), separated by 、 or commas: an
    # import resolves a value by code, label or alias.
    alias = Column(String(200), info=caption("别名"))
    order = Column(Integer, index=True, nullable=False, default=0, info=caption("排序"))
    active = Column(Boolean, index=True, nullable=False, default=True, info=caption("启用"))
    # A resource category's matching need categories (their codes, separated by 、 or commas):
    # the dispatch's proposals rank a resource of this category as answering such a need.
    need_categories = Column(String(200), info=caption("对应需求类别"))

    __caption__ = "label"

    @property
    def need_category_codes(self) -> set[str]:
        return {c.strip() for c in (self.need_categories or "").replace("、", ",").split(",")
                if c.strip()}

    def validate(self, session) -> None:
        codes = self.need_category_codes
        if not codes:
            return
        if self.kind != "resource_category":
            raise DomainError("只有资源类别可以填写对应需求类别", "need_categories")
        known = set(session.execute(select(Dictionary.code).where(
            Dictionary.kind == "need_category")).scalars())
        # and those written in the same flush (the defaults add both kinds at once)
        known |= {row.code for row in session.new
                  if isinstance(row, Dictionary) and row.kind == "need_category"}
        unknown = sorted(codes - known)
        if unknown:
            raise DomainError(f"对应需求类别中的编码不存在：{'、'.join(unknown)}", "need_categories")


class Unit(Entity):
    __tablename__ = "unit"
    __table_args__ = live_order("unit", "name", "credit_code", "party_member_count", "status")
    __label__ = N_("驻区单位")
    # The unit directory (names, types, places) is readable by all logged-in roles; the
    # community's admins and the unit's own liaison write it.
    __scope__ = Scope(org=(lambda: Unit.community_id,), unit=(lambda: Unit.id,), directory=True)
    # A unit's lists vanish with it, and return with it.
    __soft_delete_cascade__ = ("Resource.unit_id", "ServiceItem.provider_unit_id")
    __choices__ = {
        "community": lambda: Organization.type == "community",
        "category": lambda: (Dictionary.kind == "unit_category") & Dictionary.active,
    }

    name = Column(String(100), nullable=False, index=True, info=caption("单位名称"))
    credit_code = Column(String(18), index=True, nullable=False, info=caption("统一社会信用代码"))
    # Unique among rows not deleted: NULL once soft-deleted (MariaDB has no partial indexes).
    credit_code_key = Column(String(18), nullable=True, unique=True)
    category_id = Column(Integer, ForeignKey("dictionary.id"), nullable=False, index=True,
                         info=caption("单位类别"))
    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("所在社区"))
    address = Column(String(200), info=caption("单位地址"))
    party_org_name = Column(String(100), info=caption("党组织名称"))
    party_org_type = Column(String(16), index=True, info=caption("党组织类型", choices=PARTY_ORG_TYPES))
    party_member_count = Column(Integer, index=True, nullable=False, default=0,
                                info=caption("党员人数"))
    leader_name = Column(String(50), info=caption("一把手姓名"))
    leader_title = Column(String(50), info=caption("一把手职务"))
    liaison_name = Column(String(50), info=caption("联络员"))
    contact_phone = Column(String(30), info=caption("联系电话"))
    status = Column(String(8), nullable=False, default=UnitStatus.REGISTERED, index=True,
                    info=caption("状态", choices=UNIT_STATUSES))
    cancel_reason = Column(String(200), info=caption("注销原因"))
    cancelled_on = Column(Date, info=caption("注销日期"))

    category = relationship("Dictionary", info=caption("单位类别"))
    community = relationship("Organization", info=caption("所在社区"))

    __extra_labels__ = {"contact_phone_shown": N_("联系电话"),
                        "contact_phone_masked": N_("联系电话")}
    __revealing__ = ("contact_phone_shown",)
    __sql_columns__ = {"contact_phone_shown": lambda caption: shown_phone_sql(
        Unit, Unit.contact_phone)}
    # What a unit shows to those who read it only through the directory (DOMAIN.md §4: names,
    # types, places; its phone masked): the show page and the API's read of one row.
    __directory_columns__ = frozenset({
        "id", "name", "credit_code", "category", "category_id", "community", "community_id",
        "address", "party_org_name", "party_org_type", "leader_name", "leader_title",
        "liaison_name", "contact_phone_shown", "contact_phone_masked", "status"})

    @property
    def contact_phone_shown(self) -> str:
        """As an organisation's phone: in full only to its own revealing roles."""
        return shown_phone(self, self.contact_phone)

    @property
    def contact_phone_masked(self) -> str:
        return validators.mask_phone(self.contact_phone)


    def validate(self, session) -> None:
        try:
            self.credit_code = validators.normalize_credit_code(self.credit_code)
        except ValueError as exc:
            raise DomainError(str(exc), "credit_code") from None
        self.credit_code_key = self.credit_code
        _require_community(self.community, "所在社区")
        if _exists(session, select(Unit.id).where(
                Unit.credit_code_key == self.credit_code, Unit.id != (self.id or 0))):
            raise DomainError(f"统一社会信用代码 {self.credit_code} 已登记", "credit_code")
        if self.status == UnitStatus.CANCELLED and not self.cancel_reason:
            raise DomainError("注销单位须填写注销原因", "cancel_reason")

    def check_delete(self, session) -> None:
        if _exists(session, select(Member.id).where(Member.work_unit_id == self.id,
                                                     Member.deleted_on.is_(None))):
            raise DomainError(f"“{self.name}”还有在册党员，不能删除；可将单位状态改为已注销")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.credit_code_key = None

    def restore(self):
        super().restore()
        self.credit_code_key = self.credit_code


# The one answer for an 身份证号 the user may not register, whoever holds it: a member outside
# the user's scope must not be told apart from any other refusal, or the form, the API and the
# import become an oracle of who in the district is a Party member (issue 17).
ID_NOT_REGISTRABLE = "该身份证号无法由您登记，请联系所在社区"


class Member(Entity):
    __tablename__ = "member"
    __table_args__ = live_order("member", "name", "category", "status") + (
        # 在职党员 per community and per unit (报到率, the star rating, 年度考核)
        live_index("member", "community", "community_id", "category", "status"),
        live_index("member", "work_unit", "work_unit_id", "category", "status", "community_id"),
        live_index("member", "grid", "group_id", "is_red_grid_worker", "is_household_center"))
    __label__ = N_("党员")
    # Placed by its home community and by its 所在网格 (the grid anchor): a grid secretary's
    # subtree holds the members of its grid.
    __scope__ = Scope(
        org=(lambda: Member.community_id, lambda: Member.group_id),
        unit=(lambda: Member.work_unit_id,),
        member=(lambda: Member.id,),
    )
    __choices__ = {
        "community": lambda: Organization.type == "community",
        "group": lambda: Organization.type.in_(("grid", "building", "household")),
        "work_unit": lambda: Unit.status == UnitStatus.REGISTERED,
    }
    __audit_masked__ = frozenset({"id_number_enc", "id_number_hash", "id_number_key", "phone"})
    __revealing__ = ("id_number_shown", "phone_shown")
    __extra_labels__ = {"id_number": N_("身份证号"), "id_number_shown": N_("身份证号"),
                        "id_number_masked": N_("身份证号"), "phone_shown": N_("手机号"),
                        "phone_masked": N_("手机号")}

    name = Column(String(50), nullable=False, index=True, info=caption("姓名"))
    gender = Column(String(2), index=True, info=caption("性别", choices=GENDERS))
    # 身份证号: encrypted at rest; a keyed hash finds and de-duplicates it (DOMAIN.md §6).
    id_number_enc = Column(String(255), nullable=False, info=caption("身份证号"))
    id_number_hash = Column(String(64), nullable=False, index=True)
    id_number_key = Column(String(64), nullable=True, unique=True)
    phone = Column(String(30), info=caption("手机号"))
    work_unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                          info=caption("工作单位"))
    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("居住社区"))
    group_id = Column(Integer, ForeignKey("organization.id"), nullable=True, index=True,
                      info=caption("所在网格/楼栋党小组"))
    category = Column(String(8), nullable=False, default="在职", index=True,
                      info=caption("党员类别", choices=MEMBER_CATEGORIES))
    skills = Column(Text, info=caption("技能特长"))
    is_household_center = Column(Boolean, nullable=False, default=False, info=caption("党员中心户"))
    is_red_grid_worker = Column(Boolean, nullable=False, default=False, info=caption("红色网格员"))
    status = Column(String(8), nullable=False, default=MemberStatus.ACTIVE, index=True,
                    info=caption("状态", choices=MEMBER_STATUSES))

    work_unit = relationship("Unit", info=caption("工作单位"))
    community = relationship("Organization", foreign_keys=[community_id], info=caption("居住社区"))
    group = relationship("Organization", foreign_keys=[group_id], info=caption("所在网格/楼栋党小组"))


    @property
    def id_number(self) -> str:
        return crypto.decrypt(self.id_number_enc) if self.id_number_enc else ""

    @id_number.setter
    def id_number(self, value: str) -> None:
        try:
            number = validators.normalize_id_number(value)
        except ValueError as exc:
            raise DomainError(str(exc), "id_number") from None
        if self.id_number_enc and crypto.keyed_hash(number) == self.id_number_hash:
            return  # the same number sent back by an edit form: no change (nor a new ciphertext)
        self.id_number_enc = crypto.encrypt(number)
        self.id_number_hash = crypto.keyed_hash(number)
        self.id_number_key = None if self.is_deleted else self.id_number_hash
        if not self.gender:
            self.gender = validators.gender_of(number)

    # Lists mask personal data for everyone (screens are shared, lists are scanned); a record's
    # own page shows it in full to the roles that need it (DOMAIN.md §2, §6).
    @property
    def id_number_masked(self) -> str:
        return validators.mask_id_number(self.id_number)

    @property
    def phone_masked(self) -> str:
        return validators.mask_phone(self.phone)

    @property
    def id_number_shown(self) -> str:
        """In full for roles that need it, masked for the others (DOMAIN.md §6)."""
        number = self.id_number
        return number if sees_personal_data(self) else validators.mask_id_number(number)

    @property
    def phone_shown(self) -> str:
        return shown_phone(self, self.phone)

    def validate(self, session) -> None:
        if not self.id_number_hash:
            raise DomainError("请填写身份证号", "id_number")
        _require_community(self.community, "居住社区")
        if self.group is not None and not (
                self.group.type in ("grid", "building", "household")
                and self.group.path.startswith(self.community.path)):
            raise DomainError("所在网格/楼栋党小组必须是居住社区下的网格或楼栋党小组", "group")
        with unscoped():
            holder = session.execute(select(Member.id).where(
                Member.id_number_key == self.id_number_hash, Member.id != (self.id or 0))
                .limit(1)).scalar()
        if holder is not None:
            if _readable(session, Member, holder):  # a member the user sees: say so
                raise DomainError("该身份证号已登记为党员，不能重复录入", "id_number")
            raise DomainError(ID_NOT_REGISTRABLE, "id_number")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.id_number_key = None

    def restore(self):
        super().restore()
        self.id_number_key = self.id_number_hash

    __caption__ = "name"


def shown_phone(row, phone: str | None) -> str:
    """A row's phone as the acting user may see it (principal.sees_personal_data): the one rule
    for members', units', nodes' and resources' phones."""
    if not phone:  # nothing to reveal, nothing to record
        return ""
    return phone if sees_personal_data(row) else validators.mask_phone(phone)


def shown_phone_sql(model, column):
    """`shown_phone` in SQL, for an export the database writes (app/exports.py): the phone
    where the acting user owns the row and may reveal, else `validators.mask_phone`'s text.
    (A streamed export records its reveal from its query before its first row.)"""
    from sqlalchemy import String, and_, case, literal, type_coerce

    from app.extensions import db

    principal = current_principal()
    text = func.trim(column)
    length = (func.length if db.engine.dialect.name == "sqlite" else func.char_length)(text)
    digits_only = text
    for digit in "0123456789":
        digits_only = func.replace(digits_only, digit, "")
    stars = literal("*" * 30, String)

    def cat(*parts):
        joined = type_coerce(parts[0], String)
        for part in parts[1:]:
            joined = joined + type_coerce(part, String)
        return joined

    revealed = principal.system or principal.reveals_personal_data
    whens = [(func.coalesce(text, "") == "", None)]
    if revealed:
        owned = true() if principal.system else owner_clause(model, principal)
        whens.append((owned, column))
    whens += [
        (and_(length == 11, func.substr(text, 1, 1) == "1", digits_only == ""),
         cat(func.substr(text, 1, 3), literal("****", String), func.substr(text, 8))),
        (length <= 4, func.substr(stars, 1, length)),
    ]
    return case(*whens, else_=cat(func.substr(stars, 1, length - 4), func.substr(text, length - 3)))


def _readable(session, model, pk) -> bool:
    """Whether the acting user may read row `pk` (deleted ones included): asked of the session,
    whose read filter (app/security/scope.py) applies the user's scope to every query."""
    stmt = select(model.id).where(model.id == pk).execution_options(include_deleted=True)
    return session.execute(stmt).first() is not None


def _exists(session, stmt) -> bool:
    """Rules look at all rows, not only those the acting user may see."""
    with unscoped():
        return session.execute(stmt.limit(1)).first() is not None


def _require_community(org: Organization | None, what: str) -> None:
    if org is None:
        raise DomainError(f"请选择{what}", "community")
    if org.type != "community":
        raise DomainError(f"{what}必须是社区党组织（所选“{org.name}”是"
                          f"{ORG_TYPES.get(org.type, org.type)}）", "community")


@event.listens_for(Organization, "after_insert")
def _path_after_insert(mapper, connection, node) -> None:
    """A new node's path needs its own id, known only once inserted."""
    table = Organization.__table__
    parent_path, parent_depth = "/", -1
    if node.parent_id is not None:
        parent_path, parent_depth = connection.execute(
            select(table.c.path, table.c.depth).where(table.c.id == node.parent_id)).one()
    path = f"{parent_path}{node.id}/"
    connection.execute(update(table).where(table.c.id == node.id)
                       .values(path=path, depth=parent_depth + 1))
    set_committed_value(node, "path", path)
    set_committed_value(node, "depth", parent_depth + 1)
