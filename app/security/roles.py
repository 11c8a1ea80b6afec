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
    # A grid secretary: the subtree of a node below a community (网格党支部, 楼栋党小组). The
    # grid anchors of the scope declarations (a member's 所在网格, a need's grid) place rows there.
    "GridAdmin": SUBTREE,
    "UnitLiaison": UNIT,
    "Member": SELF,
    "Public": PUBLIC,
}

ROLE_LABELS = {
    "Admin": N_("系统管理员"),
    "OrgAdmin": N_("组织部管理员"),
    "StreetAdmin": N_("街道管理员"),
    "CommunityAdmin": N_("社区管理员"),
    "GridAdmin": N_("网格管理员"),
    "UnitLiaison": N_("驻区单位联络员"),
    "Auditor": N_("审计员"),
    "Member": N_("党员"),
    "Public": N_("公众"),
}

# The link each role needs to see anything (DOMAIN.md §4: a user is attached to a node, a unit
# and/or a member): an account of such a role without it would see nothing, so none is saved
# without it (app/security/models.py `UserAccount.missing_link`). GridAdmin's node lies below a
# community.
ROLE_LINKS = {
    "StreetAdmin": "org",
    "CommunityAdmin": "org",
    "GridAdmin": "org",
    "UnitLiaison": "unit",
    "Member": "member",
}
LINK_LABELS = {"org": N_("所属组织"), "unit": N_("所属单位"), "member": N_("对应党员")}
GRID_NODE_TYPES = ("grid", "building", "household")

READ = {"read"}
CRUD = {"read", "add", "edit", "delete"}
AUDIT = {"read", "export"}
DATA = {"export", "import"}

# resource -> role -> operations, stated once per entity (its view and API share them). A
# role not named for a resource gets nothing there; Admin gets everything (AUTH_ROLE_ADMIN).
# Workflow moves are granted by their transition tables, not here.
EVERYONE = ("OrgAdmin", "StreetAdmin", "CommunityAdmin", "GridAdmin", "UnitLiaison", "Auditor",
            "Member")
ADMINS = ("OrgAdmin", "StreetAdmin", "CommunityAdmin")

# Role groups, named once: the transition tables (who may make a move) and the pages say who
# by these, never by their own lists of role names. DOMAIN.md §4: StreetAdmin and OrgAdmin act
# as CommunityAdmin within their scope; star-rating runs are the district's (and a street's).
ADMIN_GROUP = frozenset(ADMINS)
LIAISON_GROUP = frozenset({"UnitLiaison"})
MEMBER_GROUP = frozenset({"Member"})
RATER_GROUP = frozenset({"OrgAdmin", "StreetAdmin"})  # the star ratings: district and street


def _grant(roles, ops, **more) -> dict[str, set[str]]:
    rights = {role: set(ops) for role in roles}
    for role, extra in more.items():
        rights[role] = rights.get(role, set()) | set(extra)
    return rights


RIGHTS: dict[str, dict[str, set[str]]] = {
    # organisation and people
    "organization": _grant(EVERYONE, READ, **{r: CRUD | DATA for r in ADMINS}, Auditor=AUDIT),
    "unit": _grant(EVERYONE, READ, **{r: CRUD | DATA for r in ADMINS}, UnitLiaison={"edit"},
                   Auditor=AUDIT),
    # open_accounts: the member list's 开通账号 (app/services/accounts.py says which roles
    # each may grant); "account" is where the batches' progress and 账号通知单 are read.
    "member": _grant(EVERYONE, READ, **{r: CRUD | DATA | {"open_accounts"} for r in ADMINS},
                     UnitLiaison=CRUD | DATA | {"open_accounts"}, Auditor=AUDIT),
    "account": _grant(ADMINS + ("UnitLiaison",), {"read", "import"}),
    "dictionary": _grant(EVERYONE, READ, OrgAdmin=CRUD | {"export"}, Auditor=AUDIT),
    # the three lists and micro-wishes
    "resource": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                       **{r: CRUD | DATA for r in ADMINS}, UnitLiaison=CRUD | DATA,
                       Auditor=AUDIT),
    "service_item": _grant(ADMINS + ("UnitLiaison", "Auditor", "Member"), READ,
                           **{r: CRUD | DATA for r in ADMINS}, UnitLiaison=CRUD | DATA,
                           Auditor=AUDIT),
    # A grid secretary files its grid's needs and wishes (source 网格员); accepting,
    # dispatching and reviewing them stay with the community (the transition tables).
    "need": _grant(EVERYONE, READ, **{r: CRUD | DATA for r in ADMINS},
                   UnitLiaison={"add"} | DATA, Member={"add"}, GridAdmin={"add"},
                   Auditor=AUDIT),
    # 资源对接: the community's admins (the joint body) propose a resource for a need; the
    # providing unit's liaison takes it on or declines (its transition table).
    "need_resource": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                            **{r: {"add", "delete", "export"} for r in ADMINS}, Auditor=AUDIT),
    "micro_wish": _grant(EVERYONE, READ, **{r: CRUD | DATA for r in ADMINS},
                         GridAdmin={"add", "import"}, Auditor=AUDIT),
    # joint meetings: the host's admins run them; a liaison reads its bodies' meetings and
    # its unit's resolutions, and reports the progress of those its unit leads.
    **{resource: _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                        **{r: CRUD | {"export"} for r in ADMINS}, Auditor=AUDIT)
       for resource in ("joint_body", "body_member", "meeting", "attendance", "agenda_item",
                        "resolution")},
    "supervision_note": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                               **{r: CRUD | {"export"} for r in ADMINS},
                               UnitLiaison={"read", "add", "edit"}, Auditor=AUDIT),
    # 工作要点 and 季度督查 (issue 26): a node's admins keep its plan; a street or 组织部 runs
    # its rounds, the communities inspected read theirs; units read the tasks they answer for
    # and report progress in the notes; 组织部 keeps the checklist.
    "work_plan_item": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                             **{r: CRUD | {"export"} for r in ADMINS}, Auditor=AUDIT),
    **{resource: _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                        OrgAdmin=CRUD | {"export"}, StreetAdmin=CRUD | {"export"},
                        CommunityAdmin=READ | {"export"}, Auditor=AUDIT)
       for resource in ("inspection", "inspection_finding")},
    # A rectification is opened by saving its failing finding, never added on its own.
    "rectification": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                            OrgAdmin=CRUD - {"add"} | {"export"},
                            StreetAdmin=CRUD - {"add"} | {"export"},
                            CommunityAdmin=READ | {"export"}, Auditor=AUDIT),
    **{resource: _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                        **{r: CRUD | {"export"} for r in ADMINS},
                        UnitLiaison={"read", "add", "edit"}, Auditor=AUDIT)
       for resource in ("work_plan_note", "rectification_note")},
    "inspection_item": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                              OrgAdmin=CRUD | {"export"}, Auditor=AUDIT),
    # co-building: agreements, dual registration, posts, service records, points and stars.
    # The ledger and the ratings are written by their services only (certification, the
    # star-rating run), never edited by hand.
    "agreement": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                        **{r: CRUD | {"export"} for r in ADMINS}, Auditor=AUDIT),
    "unit_registration": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                                **{r: CRUD | {"export"} for r in ADMINS}, UnitLiaison=CRUD,
                                Auditor=AUDIT),
    "member_registration": _grant(EVERYONE, READ, **{r: CRUD | {"export"} for r in ADMINS},
                                  UnitLiaison=CRUD, Member={"add"}, Auditor=AUDIT),
    "service_post": _grant(EVERYONE, READ, **{r: CRUD | {"export"} for r in ADMINS},
                           Auditor=AUDIT),
    "post_claim": _grant(EVERYONE, READ, **{r: {"add", "delete", "export"} for r in ADMINS},
                         Member={"add"}, Auditor=AUDIT),
    "service_record": _grant(EVERYONE, READ, **{r: CRUD | {"export"} for r in ADMINS},
                             UnitLiaison=CRUD, Member={"add", "edit"}, GridAdmin={"add"},
                             Auditor=AUDIT),
    "point_rule": _grant(EVERYONE, READ, OrgAdmin=CRUD | {"export"}, Auditor=AUDIT),
    "point_entry": _grant(EVERYONE, READ, **{r: {"export"} for r in ADMINS}, Auditor=AUDIT),
    "star_rating": _grant(EVERYONE, READ, OrgAdmin={"compute", "export"},
                          StreetAdmin={"compute", "export"}, Auditor=AUDIT),
    # 月汇报: each admin writes its own node's report and reviews those of the nodes below it
    # (the transition table's rules); the auditor reads and exports. Units and members: none.
    "work_report": _grant(ADMINS, CRUD | {"export"}, Auditor=AUDIT),
    # 年度考核: 组织部 sets the indicators and computes the year's results; the rows are then
    # moved (adjust, review, publish: their transition table says who). A community reads its
    # own results, a unit its own, a street its communities' and units'.
    "assessment_indicator": _grant(EVERYONE, READ, OrgAdmin=CRUD | {"export"}, Auditor=AUDIT),
    "assessment": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ,
                         OrgAdmin={"compute", "export"},
                         **{r: {"export"} for r in ("StreetAdmin", "CommunityAdmin")},
                         Auditor=AUDIT),
    # dashboards: the figures, each within the viewer's scope (a member has none)
    "dashboard": _grant(ADMINS + ("UnitLiaison", "Auditor"), READ),
    # the public notice board needs no login; "read" here only shows it in the menu
    "public": _grant(EVERYONE, READ),
    # accountability: the audit log is read (and exported) by the auditor and written by no
    # one; the recycle bin lists and restores, within scope, what its user may delete.
    "audit_log": _grant(("Auditor",), AUDIT),
    "recycle": _grant(ADMINS, {"read", "restore"}),
}

# Roles whose users see 身份证号 and phone in full (others see them masked): the permission
# `can_reveal` on member. No endpoint declares it, so `sync_roles` creates it.
PERSONAL_DATA_ROLES = {"Admin", "OrgAdmin", "StreetAdmin", "CommunityAdmin", "UnitLiaison"}
PERSONAL_DATA_PERMISSION = ("can_reveal", "member")
EXTRA_PERMISSIONS = [PERSONAL_DATA_PERMISSION]
for _role in PERSONAL_DATA_ROLES - {"Admin"}:
    RIGHTS["member"][_role] = RIGHTS["member"][_role] | {"reveal"}

# Field-level rights: on the resources named here, the columns (attribute names) each role
# named may change on the rows it may write; a role not named may change every column its
# "edit" right reaches. One check applies them to every write — form, API, import
# (scope.py `_check_fields`) — and the edit form shows a restricted role only these fields.
# A liaison keeps its unit's contact details current; where the unit stands (its community),
# whether it is on the register (status, cancellation) and its credit code are changed by the
# community, the street and 组织部 (issue 17: a liaison moved its unit out of its community).
FIELD_RIGHTS: dict[str, dict[str, frozenset[str]]] = {
    "unit": {
        "UnitLiaison": frozenset({
            "address", "party_org_name", "party_org_type", "party_member_count",
            "leader_name", "leader_title", "liaison_name", "contact_phone"}),
    },
}


def editable_fields(resource: str, role_names) -> frozenset[str] | None:
    """The columns users with these roles may change on `resource`'s rows (None: every one).
    Several roles grant the union: one role without a limit lifts it."""
    limits = FIELD_RIGHTS.get(resource)
    if not limits or not role_names:
        return None
    fields: set[str] = set()
    for role in role_names:
        if role not in limits:
            return None
        fields |= limits[role]
    return frozenset(fields)


ROLE_RIGHTS: dict[str, dict[str, set[str]]] = {}
for _resource, _by_role in RIGHTS.items():
    for _role, _ops in _by_role.items():
        ROLE_RIGHTS.setdefault(_role, {})[_resource] = _ops
