"""Every resource of the panel, declared once: its page, its REST API, where the menu shows it.

The menu and the API registration are derived from this list (`register`), and so are the
menu groups `flask gongjian init` grants (app/cli.py); a page is found by its resource with
`app.views.entity.view_of`, never by searching FAB's view list. An entity's resource name is its
model's table name (the view's `route_base`, the API's `resource_name` and the permission name
they share); an API takes its page's writable fields and filters where it declares none of its
own (`EntityApi.take_from_page`), so an API client filters as the page does.

Adding an entity: its model, its view and API, its rights in roles.py, the access matrix's
entry, its migration — and one line here.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app.api.assessment import AssessmentApi, AssessmentIndicatorApi
from app.api.cobuild import (
    AgreementApi,
    MemberRegistrationApi,
    PointEntryApi,
    PointRuleApi,
    PostClaimApi,
    ServicePostApi,
    ServiceRecordApi,
    StarRatingApi,
    UnitRegistrationApi,
)
from app.api.inspections import (
    InspectionApi,
    InspectionFindingApi,
    InspectionItemApi,
    RectificationApi,
    RectificationNoteApi,
    WorkPlanItemApi,
    WorkPlanNoteApi,
)
from app.api.lists import MicroWishApi, NeedApi, NeedResourceApi, ResourceApi, ServiceItemApi
from app.api.meetings import (
    AgendaItemApi,
    AttendanceApi,
    BodyMemberApi,
    JointBodyApi,
    MeetingApi,
    ResolutionApi,
    SupervisionNoteApi,
)
from app.api.org import DictionaryApi, MemberApi, OrganizationApi, UnitApi
from app.api.reports import WorkReportApi
from app.dashboards.views import DashboardView
from app.i18n import N_
from app.jobs import new_form_token
from app.menu import menu_html
from app.views.accounts import AccountView
from app.views.assessment import AssessmentIndicatorView, AssessmentView
from app.views.cobuild import (
    AgreementView,
    MemberRegistrationView,
    PointEntryView,
    PointRuleView,
    PostClaimView,
    ServicePostView,
    ServiceRecordView,
    StarRatingView,
    UnitRegistrationView,
    cobuild_summary,
)
from app.views.entity import VIEWS_KEY
from app.views.inspections import (
    InspectionFindingView,
    InspectionItemView,
    InspectionView,
    RectificationNoteView,
    RectificationView,
    WorkPlanItemView,
    WorkPlanNoteView,
)
from app.views.jobs import JobApi, JobView
from app.views.lists import (
    MicroWishView,
    NeedResourceView,
    NeedView,
    ResourceView,
    ServiceItemView,
)
from app.views.meetings import (
    AgendaItemView,
    AttendanceView,
    BodyMemberView,
    JointBodyView,
    MeetingView,
    ResolutionView,
    SupervisionNoteView,
)
from app.views.messages import MessageView, unread_notices
from app.views.mobile import MobileView
from app.views.org import DictionaryView, MemberView, OrganizationView, UnitView
from app.views.public import IntakeView, PublicView
from app.views.records import AuditLogApi, AuditLogView, record_history_url
from app.views.recycle import RecycleView
from app.views.reports import WorkReportView

# The menu's groups, in the order the menu shows them: (label, icon).
GROUPS = {
    "dashboard": (N_("数据看板"), "fa-bar-chart"),
    "org": (N_("组织与人员"), "fa-sitemap"),
    "settings": (N_("系统设置"), "fa-cogs"),
    "lists": (N_("三单管理"), "fa-list"),
    "meetings": (N_("联席会议"), "fa-users"),
    "cobuild": (N_("共驻共建"), "fa-handshake-o"),
    "inspections": (N_("督查考核"), "fa-check-circle"),
    "records": (N_("审计与回收站"), "fa-shield"),
}


@dataclass(frozen=True)
class Resource:
    """One resource: its page, its menu item (group, label, icon) and its REST API, if any.
    `name` is the menu item's and the permissions' name: an entity's table name, unless given."""

    view: type
    group: str
    label: str
    icon: str
    api: type | None = None
    name: str = ""

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", self.view.class_permission_name)
        if self.group not in GROUPS:
            raise ValueError(f"{self.name}: no menu group “{self.group}”")
        if self.api is not None:
            if self.api.class_permission_name != self.name:
                raise ValueError(f"{self.api.__name__} is not the API of {self.name}")
            self.api.take_from_page(self.view)


RESOURCES = [
    Resource(DashboardView, "dashboard", N_("数据看板"), "fa-bar-chart", name="dashboard"),
    Resource(PublicView, "dashboard", N_("公示栏"), "fa-bullhorn", name="public"),
    Resource(WorkReportView, "dashboard", N_("月汇报"), "fa-file-word-o", WorkReportApi),
    Resource(OrganizationView, "org", N_("党组织"), "fa-sitemap", OrganizationApi),
    Resource(UnitView, "org", N_("驻区单位"), "fa-building", UnitApi),
    Resource(MemberView, "org", N_("党员"), "fa-user", MemberApi),
    # Accounts opened in bulk (开通账号, 账号导入): their progress and 账号通知单.
    Resource(AccountView, "org", N_("账号导入"), "fa-user-plus"),
    Resource(DictionaryView, "settings", N_("数据字典"), "fa-book", DictionaryApi),
    Resource(ResourceView, "lists", N_("资源清单"), "fa-cubes", ResourceApi),
    Resource(NeedView, "lists", N_("需求清单"), "fa-hand-paper-o", NeedApi),
    Resource(ServiceItemView, "lists", N_("服务清单"), "fa-handshake-o", ServiceItemApi),
    Resource(NeedResourceView, "lists", N_("资源对接"), "fa-link", NeedResourceApi),
    Resource(MicroWishView, "lists", N_("微心愿"), "fa-heart", MicroWishApi),
    Resource(JointBodyView, "meetings", N_("联席会"), "fa-users", JointBodyApi),
    Resource(BodyMemberView, "meetings", N_("成员单位"), "fa-building-o", BodyMemberApi),
    Resource(MeetingView, "meetings", N_("会议"), "fa-calendar", MeetingApi),
    Resource(AttendanceView, "meetings", N_("参会记录"), "fa-check-square-o", AttendanceApi),
    Resource(AgendaItemView, "meetings", N_("议题"), "fa-list-ol", AgendaItemApi),
    Resource(ResolutionView, "meetings", N_("议定事项"), "fa-gavel", ResolutionApi),
    Resource(SupervisionNoteView, "meetings", N_("督办记录"), "fa-eye", SupervisionNoteApi),
    Resource(AgreementView, "cobuild", N_("共驻共建协议"), "fa-file-text-o", AgreementApi),
    Resource(UnitRegistrationView, "cobuild", N_("单位报到"), "fa-flag", UnitRegistrationApi),
    Resource(MemberRegistrationView, "cobuild", N_("党员报到"), "fa-id-card-o",
             MemberRegistrationApi),
    Resource(ServicePostView, "cobuild", N_("服务岗位"), "fa-map-marker", ServicePostApi),
    Resource(PostClaimView, "cobuild", N_("岗位认领"), "fa-hand-o-up", PostClaimApi),
    Resource(ServiceRecordView, "cobuild", N_("服务记录"), "fa-clock-o", ServiceRecordApi),
    Resource(PointRuleView, "cobuild", N_("积分规则"), "fa-sliders", PointRuleApi),
    Resource(PointEntryView, "cobuild", N_("积分流水"), "fa-list-alt", PointEntryApi),
    Resource(StarRatingView, "cobuild", N_("星级评定"), "fa-star", StarRatingApi),
    Resource(AssessmentIndicatorView, "cobuild", N_("考核指标"), "fa-sliders",
             AssessmentIndicatorApi),
    Resource(AssessmentView, "cobuild", N_("年度考核"), "fa-trophy", AssessmentApi),
    Resource(WorkPlanItemView, "inspections", N_("工作要点"), "fa-tasks", WorkPlanItemApi),
    Resource(WorkPlanNoteView, "inspections", N_("工作要点督办记录"), "fa-eye", WorkPlanNoteApi),
    Resource(InspectionView, "inspections", N_("季度督查"), "fa-search", InspectionApi),
    Resource(InspectionFindingView, "inspections", N_("督查发现"), "fa-flag-o",
             InspectionFindingApi),
    Resource(RectificationView, "inspections", N_("整改任务"), "fa-wrench", RectificationApi),
    Resource(RectificationNoteView, "inspections", N_("整改进展"), "fa-comment-o",
             RectificationNoteApi),
    Resource(InspectionItemView, "inspections", N_("督查项目"), "fa-list-ul", InspectionItemApi),
    Resource(AuditLogView, "records", N_("操作日志"), "fa-history", AuditLogApi),
    Resource(RecycleView, "records", N_("回收站"), "fa-trash", name="recycle"),
]


def register(appbuilder) -> None:
    """The menu, then the APIs, in the order above; the pages by resource for `view_of`."""
    views = {}
    for resource in RESOURCES:
        group_label, group_icon = GROUPS[resource.group]
        views[resource.name] = appbuilder.add_view(
            resource.view, resource.name, label=resource.label, icon=resource.icon,
            category=resource.group, category_label=group_label, category_icon=group_icon)
    for resource in RESOURCES:
        if resource.api is not None:
            appbuilder.add_api(resource.api)
    current_app.extensions[VIEWS_KEY] = views
    # 我的任务: every logged-in user's own jobs (in the user menu, not a permission's menu).
    appbuilder.add_view_no_menu(JobView)
    # The resident's intake, tracking and QR posters (/public/…, no login, no menu).
    appbuilder.add_view_no_menu(IntakeView)
    # The phone pages (/m/): the same rows and moves, laid out for a 390 px screen.
    appbuilder.add_view_no_menu(MobileView)
    appbuilder.add_api(JobApi)
    # 我的消息: every logged-in user's own notices; the bell in the navigation bar counts them.
    appbuilder.add_view_no_menu(MessageView)
    current_app.jinja_env.globals["unread_notices"] = unread_notices
    # The menu bar: the one menu table's cut for the current user (app/menu.py), as HTML.
    current_app.jinja_env.globals["menu_html"] = menu_html
    current_app.jinja_env.globals["new_form_token"] = new_form_token
    # The co-building panels of the unit's and the member's pages.
    current_app.jinja_env.globals["cobuild_summary"] = cobuild_summary
    # Every record's page links to its history in the audit trail.
    current_app.jinja_env.globals["record_history_url"] = record_history_url
