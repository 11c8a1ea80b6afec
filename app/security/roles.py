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

# role -> resource -> operations. Resources not listed are not granted. Admin gets everything
# (FAB's AUTH_ROLE_ADMIN), so it is not listed.
ROLE_RIGHTS: dict[str, dict[str, set[str]]] = {
    "OrgAdmin": {
        "organization": CRUD | {"export"},
        "unit": CRUD | {"export"},
        "member": CRUD | {"export"},
        "dictionary": CRUD,
    },
    "StreetAdmin": {
        "organization": CRUD | {"export"},
        "unit": CRUD | {"export"},
        "member": CRUD | {"export"},
        "dictionary": READ,
    },
    "CommunityAdmin": {
        "organization": CRUD | {"export"},
        "unit": CRUD | {"export"},
        "member": CRUD | {"export"},
        "dictionary": READ,
    },
    "UnitLiaison": {
        "organization": READ,
        "unit": READ | {"edit"},
        "member": CRUD,
        "dictionary": READ,
    },
    "Auditor": {
        "organization": AUDIT,
        "unit": AUDIT,
        "member": AUDIT,
        "dictionary": READ,
    },
    "Member": {
        "organization": READ,
        "unit": READ,
        "member": READ,
        "dictionary": READ,
    },
    "Public": {},
}

# Roles whose users see 身份证号 and phone in full (others see them masked).
PERSONAL_DATA_ROLES = {"Admin", "OrgAdmin", "StreetAdmin", "CommunityAdmin", "UnitLiaison"}
