"""The menu: every view and API, registered in one visible place."""
from flask import current_app

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
from app.api.lists import MicroWishApi, NeedApi, ResourceApi, ServiceItemApi
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
from app.dashboards.views import DashboardView
from app.i18n import N_
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
from app.views.lists import MicroWishView, NeedView, ResourceView, ServiceItemView
from app.views.meetings import (
    AgendaItemView,
    AttendanceView,
    BodyMemberView,
    JointBodyView,
    MeetingView,
    ResolutionView,
    SupervisionNoteView,
)
from app.views.org import DictionaryView, MemberView, OrganizationView, UnitView
from app.views.public import PublicView
from app.views.records import AuditLogApi, AuditLogView, record_history_url
from app.views.recycle import RecycleView

# (view, resource name = menu permission name, Chinese label, icon, category)
MENU = [
    (DashboardView, "dashboard", N_("数据看板"), "fa-bar-chart", "dashboard"),
    (PublicView, "public", N_("公示栏"), "fa-bullhorn", "dashboard"),
    (OrganizationView, "organization", N_("党组织"), "fa-sitemap", "org"),
    (UnitView, "unit", N_("驻区单位"), "fa-building", "org"),
    (MemberView, "member", N_("党员"), "fa-user", "org"),
    (DictionaryView, "dictionary", N_("数据字典"), "fa-book", "settings"),
    (ResourceView, "resource", N_("资源清单"), "fa-cubes", "lists"),
    (NeedView, "need", N_("需求清单"), "fa-hand-paper-o", "lists"),
    (ServiceItemView, "service_item", N_("服务清单"), "fa-handshake-o", "lists"),
    (MicroWishView, "micro_wish", N_("微心愿"), "fa-heart", "lists"),
    (JointBodyView, "joint_body", N_("联席会"), "fa-users", "meetings"),
    (BodyMemberView, "body_member", N_("成员单位"), "fa-building-o", "meetings"),
    (MeetingView, "meeting", N_("会议"), "fa-calendar", "meetings"),
    (AttendanceView, "attendance", N_("参会记录"), "fa-check-square-o", "meetings"),
    (AgendaItemView, "agenda_item", N_("议题"), "fa-list-ol", "meetings"),
    (ResolutionView, "resolution", N_("议定事项"), "fa-gavel", "meetings"),
    (SupervisionNoteView, "supervision_note", N_("督办记录"), "fa-eye", "meetings"),
    (AgreementView, "agreement", N_("共驻共建协议"), "fa-file-text-o", "cobuild"),
    (UnitRegistrationView, "unit_registration", N_("单位报到"), "fa-flag", "cobuild"),
    (MemberRegistrationView, "member_registration", N_("党员报到"), "fa-id-card-o", "cobuild"),
    (ServicePostView, "service_post", N_("服务岗位"), "fa-map-marker", "cobuild"),
    (PostClaimView, "post_claim", N_("岗位认领"), "fa-hand-o-up", "cobuild"),
    (ServiceRecordView, "service_record", N_("服务记录"), "fa-clock-o", "cobuild"),
    (PointRuleView, "point_rule", N_("积分规则"), "fa-sliders", "cobuild"),
    (PointEntryView, "point_entry", N_("积分流水"), "fa-list-alt", "cobuild"),
    (StarRatingView, "star_rating", N_("星级评定"), "fa-star", "cobuild"),
    (AuditLogView, "audit_log", N_("操作日志"), "fa-history", "records"),
    (RecycleView, "recycle", N_("回收站"), "fa-trash", "records"),
]
CATEGORIES = {"org": (N_("组织与人员"), "fa-sitemap"), "settings": (N_("系统设置"), "fa-cogs"),
              "lists": (N_("三单管理"), "fa-list")}
CATEGORIES["meetings"] = (N_("联席会议"), "fa-users")
CATEGORIES["dashboard"] = (N_("数据看板"), "fa-bar-chart")
CATEGORIES["cobuild"] = (N_("共驻共建"), "fa-handshake-o")
CATEGORIES["records"] = (N_("审计与回收站"), "fa-shield")
APIS = [OrganizationApi, UnitApi, MemberApi, DictionaryApi,
        ResourceApi, NeedApi, ServiceItemApi, MicroWishApi]
APIS += [JointBodyApi, BodyMemberApi, MeetingApi, AttendanceApi, AgendaItemApi, ResolutionApi,
         SupervisionNoteApi]
APIS += [AgreementApi, UnitRegistrationApi, MemberRegistrationApi, ServicePostApi, PostClaimApi,
         ServiceRecordApi, PointRuleApi, PointEntryApi, StarRatingApi]
APIS += [AuditLogApi]


def register_views(appbuilder) -> None:
    for view, name, label, icon, category in MENU:
        category_label, category_icon = CATEGORIES[category]
        appbuilder.add_view(view, name, label=label, icon=icon, category=category,
                            category_label=category_label, category_icon=category_icon)
    for api in APIS:
        appbuilder.add_api(api)
    # The co-building panels of the unit's and the member's pages.
    current_app.jinja_env.globals["cobuild_summary"] = cobuild_summary
    # Every record's page links to its history in the audit trail.
    current_app.jinja_env.globals["record_history_url"] = record_history_url
