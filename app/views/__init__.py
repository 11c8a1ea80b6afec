"""The menu: every view and API, registered in one visible place."""
from app.i18n import N_
from app.api.org import DictionaryApi, MemberApi, OrganizationApi, UnitApi
from app.views.org import DictionaryView, MemberView, OrganizationView, UnitView
from app.api.lists import MicroWishApi, NeedApi, ResourceApi, ServiceItemApi
from app.views.lists import MicroWishView, NeedView, ResourceView, ServiceItemView

# (view, resource name = menu permission name, Chinese label, icon, category)
MENU = [
    (OrganizationView, "organization", N_("党组织"), "fa-sitemap", "org"),
    (UnitView, "unit", N_("驻区单位"), "fa-building", "org"),
    (MemberView, "member", N_("党员"), "fa-user", "org"),
    (DictionaryView, "dictionary", N_("数据字典"), "fa-book", "settings"),
    (ResourceView, "resource", N_("资源清单"), "fa-cubes", "lists"),
    (NeedView, "need", N_("需求清单"), "fa-hand-paper-o", "lists"),
    (ServiceItemView, "service_item", N_("服务清单"), "fa-handshake-o", "lists"),
    (MicroWishView, "micro_wish", N_("微心愿"), "fa-heart", "lists"),
]
CATEGORIES = {"org": (N_("组织与人员"), "fa-sitemap"), "settings": (N_("系统设置"), "fa-cogs"),
              "lists": (N_("三单管理"), "fa-list")}
APIS = [OrganizationApi, UnitApi, MemberApi, DictionaryApi,
        ResourceApi, NeedApi, ServiceItemApi, MicroWishApi]


def register_views(appbuilder) -> None:
    for view, name, label, icon, category in MENU:
        category_label, category_icon = CATEGORIES[category]
        appbuilder.add_view(view, name, label=label, icon=icon, category=category,
                            category_label=category_label, category_icon=category_icon)
    for api in APIS:
        appbuilder.add_api(api)
