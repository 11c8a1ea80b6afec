"""The roles of DOMAIN.md §4 as data: each role's data-scope level and its rights per resource.

`flask gongjian init` makes the database say exactly this (idempotently); nothing is
assigned by hand. An operation maps to one FAB permission ``can_<op>`` on the resource's
``class_permission_name`` (the resource name), shared by its view and its API.
"""

from app.i18n import N_

# Scope levels, after RuoYi's 全部 / 本级及以下 / 本单位 / 仅本人.
ALL, SUBTREE, UNIT, SELF, PUBLIC = "all", "subtree", "unit", "self", "public"

ROLE_SCOPES = {
    "Admin": ALL,
    "OrgAdmin": ALL,
    "Auditor": ALL,
    "StreetAdmin": SUBTREE,
    "CommunityAdmin": SUBTREE,
    "UnitLiaison": UNIT,
    "Member": SELF,
    "Public": PUBLIC,
}

ROLE_LABELS = {
    "Admin": N_("系统管理员"),
    "OrgAdmin": N_("组织部管理员"),
    "StreetAdmin": N_("街道管理员"),
    "CommunityAdmin": N_("社区管理员"),
    "UnitLiaison": N_("驻区单位联络员"),
    "Auditor": N_("审计员"),
    "Member": N_("党员"),
    "Public": N_("公众"),
}

READ = {"read"}
CRUD = {"read", "add", "edit", "delete"}
AUDIT = {"read", "export"}
DATA = {"export", "import"}

# resource -> role -> operations, stated once per entity (its view and API share them). A
# role not named for a resource gets nothing there; Admin gets everything (AUTH_ROLE_ADMIN).
# Workflow moves are granted by their transition tables, not here.
EVERYONE = ("OrgAdmin", "StreetAdmin", "CommunityAdmin", "UnitLiaison", "Auditor", "Member")
ADMINS = ("OrgAdmin", "StreetAdmin", "CommunityAdmin")


def _grant(roles, ops, **more) -> dict[str, set[str]]:
    rights = {role: set(ops) for role in roles}
    for role, extra in more.items():
        rights[role] = rights.get(role, set()) | set(extra)
    return rights


RIGHTS: dict[str, dict[str, set[str]]] = {
    # organisation and people
    "organization": _grant(EVERYONE, READ, **{r: CRUD | {"export"} for r in ADMINS}, Auditor=AUDIT),
    "unit": _grant(EVERYONE, READ, **{r: CRUD | DATA for r in ADMINS}, UnitLiaison={"edit"},
                   Auditor=AUDIT),
    "member": _grant(EVERYONE, READ, **{r: CRUD | DATA for r in ADMINS},
                     UnitLiaison=CRUD | DATA, Auditor=AUDIT),
    "dictionary": _grant(EVERYONE, READ, OrgAdmin=CRUD),
    # the three lists and micro-wishes
    "resource": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                       **{r: CRUD | DATA for r in ADMINS}, UnitLiaison=CRUD | DATA,
                       Auditor=AUDIT),
    "service_item": _grant(ADMINS + ("UnitLiaison", "Auditor", "Member"), READ,
                           **{r: CRUD | DATA for r in ADMINS}, UnitLiaison=CRUD | DATA,
                           Auditor=AUDIT),
    "need": _grant(EVERYONE, READ, **{r: CRUD | DATA for r in ADMINS},
                   UnitLiaison={"add"} | DATA, Member={"add"}, Auditor=AUDIT),
    "micro_wish": _grant(EVERYONE, READ, **{r: CRUD | {"export"} for r in ADMINS}, Auditor=AUDIT),
}

ROLE_RIGHTS: dict[str, dict[str, set[str]]] = {}
for _resource, _by_role in RIGHTS.items():
    for _role, _ops in _by_role.items():
        ROLE_RIGHTS.setdefault(_role, {})[_resource] = _ops

# Roles whose users see 身份证号 and phone in full (others see them masked).
PERSONAL_DATA_ROLES = {"Admin", "OrgAdmin", "StreetAdmin", "CommunityAdmin", "UnitLiaison"}
