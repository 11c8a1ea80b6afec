"""月汇报 — the monthly work report of an organisation node (DOMAIN.md §1: 月汇报、季督查、年考核).

One report per node (community, street, district) and calendar month. Its figures are the
dashboard's (app/dashboards/figures.py) for the node's subtree and the month: live while it is a
draft, frozen into `figures` when it is submitted, so what the street approved never changes
under it. The narrative (总结 / 存在问题 / 下步打算) is the node's admin's own text.
"""
from __future__ import annotations

import json
import re
from calendar import monthrange
from datetime import date
from enum import StrEnum

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    and_,
    false,
    inspect,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import object_session, relationship

from app import clock
from app.errors import DomainError
from app.i18n import N_, gettext
from app.models.base import Entity, Scope, caption, live_order, state_choices, status_is_version
from app.models.org import Organization
from app.security.principal import Principal, current_principal, unscoped


class ReportStatus(StrEnum):
    """The states of a monthly report; the values are what the database stores."""

    DRAFT = "草稿"
    SUBMITTED = "已提交"
    APPROVED = "已通过"
    RETURNED = "已退回"


REPORT_STATUSES = state_choices(ReportStatus)
# The states as msgids: the document and the print page show them translated.
STATUS_LABELS = (N_("草稿"), N_("已提交"), N_("已通过"), N_("已退回"))
# A report is written while it is a draft or after it was returned; submitted or approved, its
# narrative and figures stand as they were sent.
EDITABLE = (ReportStatus.DRAFT, ReportStatus.RETURNED)
# The nodes that report monthly: a community to its street, a street to 组织部 (the district),
# whose own report is final when it is filed.
REPORTING_NODES = ("community", "street", "district")
NARRATIVE = ("summary", "problems", "plans")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# The frozen figures: MariaDB's TEXT holds 64 KB, a street's category tables can outgrow it.
FIGURES_TYPE = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def parse_month(text: str | None) -> tuple[date, date]:
    """'2026-07' → its first and last day; a clear message otherwise."""
    found = MONTH.match((text or "").strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
        raise DomainError("月份格式应为“年-月”，如 2026-07", "month")
    year, month = int(found.group(1)), int(found.group(2))
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def own_node(node: Organization, principal: Principal) -> bool:
    """Whether `principal` administers `node` itself (writes its report): the node its account
    is attached to, or 组织部 (every scope) for the district's own report."""
    if principal.system or "Admin" in principal.role_names:
        return True
    if node.path in principal.org_paths:
        return True
    return principal.sees_all and "OrgAdmin" in principal.role_names and node.type == "district"


def reviewed_nodes(principal: Principal):
    """The nodes whose children's reports `principal` reviews (a select of ids), or None: a
    street admin's street; 组织部's district (a street's report goes up to it)."""
    if principal.org_paths:
        return select(Organization.id).where(Organization.path.in_(principal.org_paths))
    if principal.sees_all and principal.role_names & {"OrgAdmin", "Admin"} or principal.system:
        return select(Organization.id).where(Organization.type == "district")
    return None


def reviews_below(parent: Organization, principal: Principal) -> bool:
    if parent.path in principal.org_paths:
        return True
    return parent.type == "district" and (
        principal.system or principal.sees_all and bool(principal.role_names & {"OrgAdmin", "Admin"}))


def month_ended(month: str) -> bool:
    """A month has ended when its last day is before today (in GONGJIAN_TIMEZONE)."""
    return parse_month(month)[1] < clock.today()


class WorkReport(Entity):
    __tablename__ = "work_report"
    __table_args__ = live_order("work_report", "month", "status")
    __label__ = N_("月汇报")
    __scope__ = Scope(org=(lambda: WorkReport.org_id,))
    __choices__ = {"org": lambda: Organization.type.in_(REPORTING_NODES)}
    __list_loads__ = ("org",)
    __extra_labels__ = {"awaits_review": N_("待我审核")}

    org_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                    info=caption("党组织"))
    month = Column(String(7), nullable=False, index=True, info=caption("月份"))
    summary = Column(Text, info=caption("工作总结"))
    problems = Column(Text, info=caption("存在问题"))
    plans = Column(Text, info=caption("下步打算"))
    status = Column(String(8), nullable=False, default=ReportStatus.DRAFT, index=True,
                    info=caption("状态", choices=REPORT_STATUSES))
    __mapper_args__ = status_is_version(status)
    return_reason = Column(String(500), info=caption("退回原因"))
    # The figures as submitted (JSON: figure name → rows); empty while live.
    figures = Column(FIGURES_TYPE, info=caption("汇报数据"))
    submitted_on = Column(DateTime, info=caption("提交时间"))
    submitted_by_id = Column(Integer, ForeignKey("ab_user.id"), info=caption("提交人"))
    reviewed_on = Column(DateTime, info=caption("审核时间"))
    reviewed_by_id = Column(Integer, ForeignKey("ab_user.id"), info=caption("审核人"))
    # "<org id>:<month>" while live: one report per node and month (MariaDB has no partial index).
    active_key = Column(String(24), nullable=True, unique=True)

    org = relationship("Organization", info=caption("党组织"))

    def __str__(self) -> str:
        return f"{self.org.name if self.org else ''} {self.month or ''} 月汇报".strip()

    @classmethod
    def __caption_sql__(cls, table):
        return None

    @hybrid_property
    def awaits_review(self) -> bool:
        """Submitted, and the acting user administers the node above (it reviews it)."""
        if self.status != ReportStatus.SUBMITTED or self.org is None:
            return False
        with unscoped():
            parent = object_session(self).get(Organization, self.org.parent_id) \
                if self.org.parent_id else None
        return parent is not None and reviews_below(parent, current_principal())

    @awaits_review.inplace.expression
    @classmethod
    def _awaits_review_expression(cls):
        principal = current_principal()
        parents = reviewed_nodes(principal)
        if parents is None:
            return false()
        children = select(Organization.id).where(Organization.parent_id.in_(parents))
        return and_(cls.status == ReportStatus.SUBMITTED, cls.org_id.in_(children))

    @property
    def frozen(self) -> dict | None:
        if not self.figures:
            return None
        try:
            found = json.loads(self.figures)
        except ValueError:  # not what submit wrote: shown as no figures, never as live ones
            return {}
        return found if isinstance(found, dict) else {}

    @property
    def month_label(self) -> str:
        try:
            first, _ = parse_month(self.month)
        except DomainError:
            return self.month or ""
        return gettext("%(year)d年%(month)d月", year=first.year, month=first.month)

    def validate(self, session) -> None:
        first, _ = parse_month(self.month)
        self.month = f"{first:%Y-%m}"
        node = self.org
        if node is None and self.org_id:
            with unscoped():
                node = session.get(Organization, self.org_id)
        if node is None:
            raise DomainError("请选择党组织", "org")
        if node.type not in REPORTING_NODES:
            raise DomainError("月汇报由社区、街道或区委组织部填报", "org")
        state = inspect(self)
        if (state.pending or state.transient or any(
                state.attrs[k].history.has_changes() for k in NARRATIVE)) \
                and not own_node(node, current_principal()):
            raise DomainError("月汇报由本级党组织的管理员填写", "org")
        changed = [key for key in ("org_id", "month", *NARRATIVE)
                   if state.attrs[key].history.has_changes()]
        if state.persistent and changed:
            history = state.attrs.status.history
            was = history.deleted[0] if history.deleted else self.status
            if was not in EDITABLE:
                raise DomainError(f"月汇报{was}，不能修改", changed[0])
        if state.persistent and {"org_id", "month"} & set(changed):
            raise DomainError("月汇报的党组织和月份不能修改，请新建该月的汇报", "month")
        self.active_key = f"{self.org_id or node.id}:{self.month}"
        with unscoped():
            taken = session.execute(select(WorkReport.id).where(
                WorkReport.active_key == self.active_key, WorkReport.id != (self.id or 0))).first()
        if taken:
            raise DomainError(f"{node.name}{first.year}年{first.month}月的月汇报已存在", "month")

    def check_delete(self, session) -> None:
        if self.status not in EDITABLE or self.submitted_on is not None:
            raise DomainError("已提交过的月汇报不能删除（它的审核记录要保留）")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.active_key = None

    def restore(self):
        super().restore()
        self.active_key = f"{self.org_id}:{self.month}"
