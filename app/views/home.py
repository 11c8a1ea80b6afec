"""The landing page: before login a welcome and the public notice board; after login the
user's to-do list (我的待办), by role. Every count comes from the scoped session (what the user
may see) and links to the list where the items are handled, filtered to exactly those items."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_appbuilder import IndexView, expose
from sqlalchemy import func, select

from app import clock
from app.dashboards.links import (
    EQ,
    FLAG,
    GREATER,
    IN,
    MANY,
    NOT_EQ,
    RELATION,
    SMALLER,
    ListLink,
    list_link,
)
from app.extensions import db
from app.i18n import N_, gettext
from app.models.cobuild import (
    Agreement,
    ClaimStatus,
    MemberRegistration,
    MemberRegistrationStatus,
    PointEntry,
    PostClaim,
    RecordStatus,
    ServiceRecord,
    UnitRegistration,
    UnitRegistrationStatus,
)
from app.models.inspections import Rectification
from app.models.lists import (
    MatchStatus,
    MicroWish,
    Need,
    NeedResource,
    NeedStatus,
    Resource,
    ResourceStatus,
    ServiceItem,
    ServiceStatus,
    WishStatus,
)
from app.models.meetings import Meeting, MeetingStatus, Resolution, ResolutionStatus
from app.models.records import AuditLog
from app.models.reports import WorkReport
from app.models.supervision import TaskStatus
from app.models.workplan import WorkPlanItem
from app.security.roles import ADMIN_GROUP, ROLE_LABELS
from app.security.scope import current_principal

ADMIN_ROLES = {"Admin"} | ADMIN_GROUP
AUDIT_ROLES = {"Admin", "Auditor"}
RECENT = 8
UPCOMING_DAYS = 30  # the meetings a liaison prepares for


@dataclass
class Entry:
    label: str
    count: int
    url: str | None
    note: str = ""
    urgent: bool = False


@dataclass
class Group:
    title: str
    entries: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # (text, url, when) of recent items

    def add(self, label, model, *filters, note="", urgent=False) -> ListLink | None:
        """An item: its label, and its filters (column, list filter argument, value) — one
        declaration, made the link to the list, whose own filters count it (`ListLink`): the
        number shown is the record count of the page the link opens. An item whose list the
        user may not open is not one's to do."""
        link = list_link(model.__tablename__, *filters)
        if link is not None:
            self.entries.append(Entry(label, link.count(), link.url, note, urgent))
        return link


# Registered members one answers for (the community's, or the unit's working members) who
# have not served yet this month.
UNSERVED = (N_("本月尚未服务的已报到党员"), MemberRegistration,
            ("status", EQ, MemberRegistrationStatus.REGISTERED), ("served_this_month", FLAG, 0))


def _admin_groups() -> list[Group]:
    needs = Group(N_("需求办理"))
    needs.add(N_("待受理的需求（平台接单）"), Need, ("status", EQ, NeedStatus.NEW))
    needs.add(N_("待派单的需求（会商派单）"), Need, ("status", EQ, NeedStatus.ACCEPTED))
    needs.add(N_("待回访的需求（回访评单）"), Need, ("status", EQ, NeedStatus.DONE))
    needs.add(N_("逾期未办结的需求"), Need, ("overdue", FLAG, 1), urgent=True)
    review = Group(N_("待审核、待确认"))
    review.add(N_("待审核的资源清单"), Resource, ("status", EQ, ResourceStatus.PENDING))
    review.add(N_("待审核的服务项目"), ServiceItem, ("status", EQ, ServiceStatus.PENDING))
    review.add(N_("待审核的微心愿"), MicroWish, ("status", EQ, WishStatus.PENDING))
    review.add(N_("待确认的单位报到"), UnitRegistration,
               ("status", EQ, UnitRegistrationStatus.PENDING))
    review.add(N_("待确认的党员报到"), MemberRegistration,
               ("status", EQ, MemberRegistrationStatus.PENDING))
    review.add(N_("待认证的服务记录"), ServiceRecord, ("status", EQ, RecordStatus.PENDING))
    review.add(*UNSERVED)
    meetings = Group(N_("联席会议督办"))
    meetings.add(N_("逾期未办结的议定事项"), Resolution, ("overdue", FLAG, 1), urgent=True)
    meetings.add(N_("未办结的议定事项（待办、办理中）"), Resolution,
                 ("status", NOT_EQ, ResolutionStatus.DONE))
    tasks = Group(N_("整改任务与工作要点"))
    tasks.add(N_("逾期未办结的整改任务"), Rectification, ("overdue", FLAG, 1), urgent=True)
    tasks.add(N_("未办结的整改任务"), Rectification, ("status", NOT_EQ, TaskStatus.DONE))
    tasks.add(N_("逾期未办结的工作要点"), WorkPlanItem, ("overdue", FLAG, 1), urgent=True)
    return [needs, review, meetings, tasks, *_report_groups()]


def _report_groups() -> list[Group]:
    """月汇报: those of the nodes below awaiting one's review, and the nodes below that have
    not submitted last month's (a street's communities, 组织部's streets)."""
    from app.services.work_report import last_month, missing_reports

    principal = current_principal()
    if not principal.role_names & {"StreetAdmin", "OrgAdmin", "Admin"}:
        return []
    reports = Group(N_("月汇报"))
    reports.add(N_("待审核的月汇报"), WorkReport, ("awaits_review", FLAG, 1))
    month = last_month()
    for node in missing_reports(db.session, principal, month):
        reports.rows.append((gettext("%(node)s：%(month)s 月汇报未提交", node=node.name, month=month),
                             None, ""))
    for report in db.session.execute(select(WorkReport).where(WorkReport.awaits_review)
                                     .order_by(WorkReport.submitted_on).limit(RECENT)).scalars():
        reports.rows.append((gettext("%(report)s（待审核）", report=report),
                             f"/work_report/show/{report.id}", report.submitted_on))
    return [reports]


def _upcoming_meetings(group: Group, today: date) -> None:
    # Today and the 29 days after: the list's date filters are "after" and "before", so the
    # day before and the day after.
    link = group.add(N_("30 天内计划召开的会议"), Meeting, ("status", EQ, MeetingStatus.PLANNED),
                     ("planned_date", GREATER, today - timedelta(days=1)),
                     ("planned_date", SMALLER, today + timedelta(days=UPCOMING_DAYS)))
    for meeting in link.query().order_by(Meeting.planned_date, Meeting.id).limit(5) \
            if link else ():
        group.rows.append((meeting.heading, f"/meeting/show/{meeting.id}", meeting.planned_date))


def _liaison_groups(unit_id: int) -> list[Group]:
    today = clock.today()
    mine = ("assigned_unit", RELATION, unit_id)
    needs = Group(N_("派给本单位的需求"))
    needs.add(N_("待接单（单位接单）"), Need, mine, ("status", EQ, NeedStatus.DISPATCHED))
    needs.add(N_("办理中，待办结"), Need, mine, ("status", EQ, NeedStatus.IN_HAND))
    needs.add(N_("其中已逾期"), Need, mine, ("overdue", FLAG, 1), urgent=True)
    needs.add(N_("联合会提议本单位资源，待认领"), NeedResource, ("status", EQ, MatchStatus.PROPOSED))
    drafts = Group(N_("待提交的清单"))
    drafts.add(N_("资源清单（草稿或已驳回）"), Resource, ("unit", RELATION, unit_id),
               ("status", IN, [ResourceStatus.DRAFT, ResourceStatus.REJECTED]))
    drafts.add(N_("服务项目（草稿或已驳回）"), ServiceItem, ("provider_unit", RELATION, unit_id),
               ("status", IN, [ServiceStatus.DRAFT, ServiceStatus.REJECTED]))
    cobuild = Group(N_("协议与会议"))
    cobuild.add(N_("即将到期的共驻共建协议"), Agreement, ("unit", RELATION, unit_id),
                ("expiring", FLAG, 1), urgent=True)
    cobuild.add(N_("本单位牵头、未办结的议定事项"), Resolution, ("lead_unit", RELATION, unit_id),
                ("status", NOT_EQ, ResolutionStatus.DONE))
    cobuild.add(N_("本单位负责、未办结的整改任务"), Rectification, ("lead_unit", RELATION, unit_id),
                ("status", NOT_EQ, TaskStatus.DONE))
    cobuild.add(N_("本单位牵头、未办结的工作要点"), WorkPlanItem, ("lead_unit", RELATION, unit_id),
                ("status", NOT_EQ, TaskStatus.DONE))
    cobuild.add(*UNSERVED)
    _upcoming_meetings(cobuild, today)
    return [needs, drafts, cobuild]


def _member_groups(member_id: int) -> list[Group]:
    mine = Group(N_("我的服务"))
    mine.add(N_("我认领的服务岗位"), PostClaim, ("member", RELATION, member_id),
             ("status", EQ, ClaimStatus.CLAIMED))
    mine.add(N_("我认领、待实现的微心愿"), MicroWish, ("claimant_member", RELATION, member_id),
             ("status", EQ, WishStatus.CLAIMED))
    mine.add(N_("可认领的微心愿"), MicroWish, ("status", EQ, WishStatus.OPEN))
    mine.add(N_("派给我的需求（待接单）"), Need, ("status", EQ, NeedStatus.DISPATCHED),
             ("assigned_members", MANY, member_id))
    mine.add(N_("待认证的服务记录"), ServiceRecord, ("member", RELATION, member_id),
             ("status", EQ, RecordStatus.PENDING))
    points = Group(N_("我的积分"))
    own = list_link("point_entry", ("member", RELATION, member_id), ("subject_type", EQ, "member"))
    if own is not None:  # the sum of the ledger's rows its link lists
        total = own.query(func.coalesce(func.sum(PointEntry.delta), 0)).scalar()
        points.entries.append(Entry(f"累计积分 {float(total or 0):g} 分，积分流水", own.count(),
                                    own.url))
    return [mine, points]


def _grid_groups() -> list[Group]:
    """A grid secretary follows its grid's needs, wishes and service (its scope is the grid):
    the community accepts, dispatches, reviews and certifies them."""
    grid = Group(N_("本网格"))
    grid.add(N_("待社区受理的需求"), Need, ("status", EQ, NeedStatus.NEW))
    grid.add(N_("办理中的需求"), Need, ("status", EQ, NeedStatus.IN_HAND))
    grid.add(N_("逾期未办结的需求"), Need, ("overdue", FLAG, 1), urgent=True)
    grid.add(N_("待社区审核的微心愿"), MicroWish, ("status", EQ, WishStatus.PENDING))
    grid.add(N_("待认证的服务记录"), ServiceRecord, ("status", EQ, RecordStatus.PENDING))
    return [grid]


def _audit_groups() -> list[Group]:
    from app.views.records import activity_text, record_url, who_did

    exports, imports = Group(N_("最近的导出")), Group(N_("最近的导入"))
    changes = Group(N_("最近的数据变更"))
    for group, actions in ((exports, ("export",)), (imports, ("import",)),
                           (changes, ("create", "update", "delete", "restore", "transition"))):
        logs = db.session.execute(select(AuditLog).where(AuditLog.action.in_(actions))
                                  .order_by(AuditLog.id.desc()).limit(RECENT)).scalars().all()
        names = who_did(logs)
        for log in logs:
            url = record_url(log) if log.action != "delete" else None
            group.rows.append((activity_text(log, names[log.id]), url, log.time))
    return [exports, imports, changes]


def todo_groups() -> list[Group]:
    """The to-do list of the acting user: the union of what each of its roles handles."""
    principal = current_principal()
    roles = principal.role_names
    groups: list[Group] = []
    if roles & ADMIN_ROLES:
        groups += _admin_groups()
    if "GridAdmin" in roles and principal.org_paths and not roles & ADMIN_ROLES:
        groups += _grid_groups()
    if "UnitLiaison" in roles and principal.unit_ids:
        groups += _liaison_groups(principal.unit_ids[0])
    if "Member" in roles and principal.member_ids:
        groups += _member_groups(principal.member_ids[0])
    if roles & AUDIT_ROLES:
        groups += _audit_groups()
    return groups


class HomeView(IndexView):
    index_template = "gongjian/index.html"

    @expose("/")
    def index(self):
        user = self.appbuilder.sm.current_user
        groups = todo_groups() if user is not None and user.is_authenticated else []
        return self.render_template(self.index_template, appbuilder=self.appbuilder,
                                    role_labels=ROLE_LABELS, groups=groups)
