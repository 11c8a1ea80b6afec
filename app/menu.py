"""The menu each role sees, as one table (issue 27).

Rights decide what a user may open (roles.py, the access matrix); this table only decides where
the menu places it. A role with a row in `MENUS` sees its own menu — groups named after its
work (a liaison's 本单位, a member's 我的服务), entries under the names it knows them by; every
other role sees the registry's groups (app/resources.py GROUPS) in their order, FAB's 系统安全
last. Either way an entry the user may not read is left out, a group left empty is dropped, and
a group with one entry is that entry, a link (never "数据看板 ▾ → 数据看板").

Adding a page to a role's menu is one line in its row; a role's row also names, in `LEFT_OUT`,
the readable pages its menu does not offer (reachable from the pages that link to them). A page
registered after the table was written (a new resource) and neither placed nor left out for a
role is not lost: it is listed under 更多 at the end of the menu, and tests/test_menu.py fails
until the table says where it goes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, g, request
from flask_babel import get_locale
from markupsafe import Markup

from app.i18n import N_, gettext
from app.security.roles import RIGHTS

HOME = "home"  # the home page: the user's to-do list (我的待办)
MORE = (N_("更多"), "fa-ellipsis-h")

# role -> ((group label, group icon, (entry, …)), …); an entry is a menu item's name (a
# resource's, or one of FAB's security pages) or (name, the label this role knows it by). A
# group with one entry shows as that entry (its label, unless the entry names its own).
MENUS: dict[str, tuple] = {
    "UnitLiaison": (
        (N_("我的待办"), "fa-check-square-o", (HOME,)),
        (N_("本单位"), "fa-building", (
            ("unit", N_("单位信息")), "member", "unit_registration", "member_registration")),
        (N_("三单"), "fa-list", (
            "resource", ("service_item", N_("服务项目")), ("need", N_("派给本单位的需求")),
            "micro_wish")),
        (N_("共建"), "fa-handshake-o", (
            ("agreement", N_("协议")), "service_post", "service_record",
            ("point_entry", N_("积分")), "assessment")),
        (N_("联席会议"), "fa-users", ("meeting", "resolution")),
        (N_("督查考核"), "fa-check-circle", ("work_plan_item", "rectification", "inspection")),
    ),
    "Member": (
        (N_("我的待办"), "fa-check-square-o", (HOME,)),
        (N_("我的服务"), "fa-heart", (
            "service_post", "service_record", ("point_entry", N_("积分")), "micro_wish")),
        (N_("我的报到"), "fa-id-card-o", ("member_registration",)),
    ),
}

# What each role's own menu leaves out although the role may read it: its pages are reached
# from the records that link to them (a meeting's attendance, a need's resources), or are not
# this role's work (a member has no figures of its own on 数据看板: no entry, never a 403).
LEFT_OUT: dict[str, frozenset[str]] = {
    "UnitLiaison": frozenset({
        "dashboard", "public", "organization", "account", "dictionary", "need_resource",
        "joint_body", "body_member", "attendance", "agenda_item", "supervision_note",
        "post_claim", "point_rule", "star_rating", "assessment_indicator", "work_plan_note",
        "inspection_finding", "rectification_note", "inspection_item"}),
    "Member": frozenset({
        "dashboard", "public", "organization", "unit", "member", "dictionary", "need",
        "service_item", "post_claim", "point_rule", "star_rating", "assessment_indicator"}),
}

# When a user has several roles, the first of these it has decides; a user with any role
# outside them (an administrator who is also a member) gets the full menu.
OWN_MENU_ORDER = ("UnitLiaison", "Member")


@dataclass
class Node:
    """One item of the menu bar: a link (url) or a group (children)."""

    label: str
    icon: str = ""
    url: str = ""
    name: str = ""
    children: list[Node] = field(default_factory=list)


def menu_role(role_names) -> str | None:
    """The role whose own menu the user sees, or None for the full menu."""
    roles = set(role_names)
    if not roles or not roles <= set(MENUS):
        return None
    return next(role for role in OWN_MENU_ORDER if role in roles)


def registered_items() -> dict:
    """Every page FAB's menu holds, by name (groups' children; separators left out)."""
    items = {}
    for item in current_app.appbuilder.menu.get_list():
        for child in item.childs or [item]:
            if child.name != "-":
                items[child.name] = child
    return items


def placed(role: str) -> set[str]:
    return {entry if isinstance(entry, str) else entry[0]
            for _label, _icon, entries in MENUS[role] for entry in entries} - {HOME}


def _readable(name: str) -> bool:
    sm = current_app.appbuilder.sm
    # A resource of ours by its read right: the menu_access of a name that is also a group's
    # ("dashboard") was granted with the group, and offered a member the figures it is refused.
    if name in RIGHTS:
        return sm.has_access("can_read", name)
    return sm.has_access("menu_access", name)


def _link(name: str, items: dict, label: str | None = None) -> Node | None:
    if name == HOME:
        return Node(gettext(label or N_("我的待办")), "fa-check-square-o",
                    current_app.appbuilder.get_url_for_index, HOME)
    item = items.get(name)
    if item is None or not _readable(name):
        return None
    return Node(gettext(label) if label else str(gettext(item.label)), item.icon or "",
                item.get_url(), name)


def _group(label: str, icon: str, links: list[Node | None]) -> Node | None:
    links = [link for link in links if link is not None]
    if not links:
        return None
    if len(links) == 1:  # one entry: the entry itself, not a group repeating it
        return links[0]
    return Node(gettext(label), icon, children=links)


def _full_menu(items: dict) -> list[Node]:
    """The registry's groups in order, FAB's own (系统安全) after them."""
    nodes = []
    for item in sorted(current_app.appbuilder.menu.get_list(),
                       key=lambda item: item.name == "Security"):
        children = [child for child in item.childs or [item] if child.name != "-"]
        nodes.append(_group(str(gettext(item.label)), item.icon or "",
                            [_link(child.name, items) for child in children]))
    return [node for node in nodes if node is not None]


def _own_menu(role: str, items: dict) -> list[Node]:
    nodes = []
    for label, icon, entries in MENUS[role]:
        links = [_link(*((entry,) if isinstance(entry, str) else entry[:1]), items,
                       *(() if isinstance(entry, str) else entry[1:]))
                 for entry in entries]
        if len(entries) == 1 and isinstance(entries[0], str):  # the group's name is its own
            links = [_link(entries[0], items, label)]
        nodes.append(_group(label, icon, links))
    # A page the table does not know yet (registered since) is offered, not lost.
    unknown = [name for name in items
               if name not in placed(role) and name not in LEFT_OUT.get(role, ())]
    nodes.append(_group(*MORE, [_link(name, items) for name in unknown]))
    return [node for node in nodes if node is not None]


@dataclass
class Menu:
    """A menu bar as kept: its entries, and their HTML once a page has rendered it."""

    nodes: list[Node]
    html: Markup | None = None


def menu_for_user() -> list[Node]:
    """The current user's menu bar (computed once per request)."""
    return _menu().nodes


def menu_html() -> Markup:
    """The menu bar's HTML, made once per menu kept: it depends on the entries alone, so every
    user served the same menu is served the same HTML (issue 30: rendering it was a twentieth
    of a list page)."""
    menu = _menu()
    if menu.html is None:
        template = current_app.jinja_env.get_template("gongjian/menu.html")
        menu.html = Markup(template.render(nodes=menu.nodes))
    return menu.html


def _menu() -> Menu:
    if "_gongjian_menu" in g:
        return g._gongjian_menu
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return Menu([])
    role = menu_role(role.name for role in user.roles)
    key = _menu_key(user, role)
    made = current_app.extensions.setdefault(MENUS_KEY, {}) if key is not None else {}
    if key not in made:
        items = registered_items()
        if len(made) >= MENUS_KEPT:  # a bound on distinct role sets and rights, not a leak
            made.clear()
        made[key] = Menu(_own_menu(role, items) if role else _full_menu(items))
    g._gongjian_menu = made[key]
    return g._gongjian_menu


# In the app's extensions: the menus made so far, by everything a menu is made from.
MENUS_KEY = "gongjian.menus"
MENUS_KEPT = 256


def _menu_key(user, role: str | None) -> tuple | None:
    """What a menu is a function of, and nothing less (issue 30): the rights of all the
    user's roles (its groups' too) as read from the database this request — so a right granted
    or withdrawn shows at once, and two users share a menu only when they hold the same
    rights —, the table's row for its role (a test may change it), the language and the
    address the links are made under. None (made anew each request) when FAB would answer a
    right otherwise than from those rights: an inactive user, or roles defined in the
    configuration (FAB_ROLES)."""
    sm = current_app.appbuilder.sm
    roles = sm.get_user_roles(user)
    if not user.is_active or sm.builtin_roles or any(r.name in sm.builtin_roles for r in roles):
        return None
    rights = sm.rights_of_roles([r.id for r in roles])
    row = (MENUS.get(role), LEFT_OUT.get(role)) if role else None
    return role, row, rights, str(get_locale()), request.script_root
