"""The access matrix of DOMAIN.md §4, as data: role × resource × operation → allowed or not.

Written from the domain text, not from app/security/roles.py (which it checks). Each resource
line names, per role, the operations it may perform; a role not named may perform none. Rows
are limited by scope separately (tests/security/test_cross_unit.py); here a cell is the right
to perform the operation at all, on a row the user may see.

Operations: the HTML routes list, show, add, edit, delete, bulk (FAB's bulk delete,
`action_post`), export (CSV), import; the REST API api_list, api_get, api_post, api_put,
api_delete; and every workflow move, named `move:<name>` (the API's
`POST /api/v1/<resource>/<pk>/transition/<name>`) and `form move:<name>` (the show page's
`POST /<resource>/transition/<pk>/<name>`).

The few rules beside the table:
1. Admin may perform every operation a resource offers (DOMAIN: "everything").
2. Auditor reads and exports everything, audit log included, and writes nothing.
3. Some operations are not offered on a resource at all, to anybody (`NOT_OFFERED`): the
   ledger, the ratings and the audit trail are written by services only, import exists only
   where a liaison or admin fills a list from a spreadsheet. Such a cell is expected refused
   (403, 404 or 405: the route may not exist) for every role, Admin included.

Judgement calls where §4 is not explicit, stated so a reviewer can disagree:
- exports: the admins export what they run; a liaison exports what it fills and imports
  (its lists and members), nothing else; a member exports nothing.
- a liaison edits its own unit's record (the unit names its liaison; "writing stays scoped").
- a claim on a post is made (add) or withdrawn (a move), never edited: admins add and delete
  claims, a member adds its own.
"""

ROLE_USERS = {
    "Admin": "admin", "OrgAdmin": "zuzhibu", "StreetAdmin": "jiedao01",
    "CommunityAdmin": "shequ01", "UnitLiaison": "danwei01", "Auditor": "shenji",
    "Member": "dangyuan01", "GridAdmin": "wangge01",
}
ROLES = list(ROLE_USERS)

HTML_OPS = ["list", "show", "add", "edit", "delete", "bulk", "export", "import"]
API_OPS = ["api_list", "api_get", "api_post", "api_put", "api_delete"]
OPS = HTML_OPS + API_OPS

# Shorthands used in the table.
SHORT = {
    "read": "list show api_list api_get",
    "write": "add edit delete bulk api_post api_put api_delete",
    "add*": "add api_post",
    "edit*": "edit api_put",
    "delete*": "delete bulk api_delete",
}
ADMINS = "OrgAdmin StreetAdmin CommunityAdmin"
EVERYONE = "OrgAdmin StreetAdmin CommunityAdmin GridAdmin UnitLiaison Auditor Member"

# resource: {roles: operations}. Admin and Auditor follow rules 1 and 2 and are not listed.
TABLE = {
    # Organisation and people. The tree and the unit directory are read by every role.
    "organization": {EVERYONE: "read", ADMINS: "write export import"},
    "unit": {EVERYONE: "read", ADMINS: "write export import", "UnitLiaison": "edit*"},
    "member": {EVERYONE: "read", ADMINS: "write export import",
               "UnitLiaison": "write export import"},
    "dictionary": {EVERYONE: "read", "OrgAdmin": "write export"},
    # The three lists and micro-wishes.
    "resource": {ADMINS + " UnitLiaison": "read write export import"},
    "service_item": {ADMINS + " UnitLiaison": "read write export import", "Member": "read"},
    # A grid secretary reads its grid's rows and files needs and wishes for it (网格员);
    # accepting, dispatching and reviewing stay with the community (no moves below).
    "need": {EVERYONE: "read", ADMINS: "write export import",
             "UnitLiaison": "add* export import", "Member": "add*", "GridAdmin": "add*"},
    "micro_wish": {EVERYONE: "read", ADMINS: "write export import", "GridAdmin": "add* import"},
    # 资源对接: the joint body (the community's admins) proposes, the unit's liaison answers.
    "need_resource": {ADMINS + " UnitLiaison": "read", ADMINS: "add* delete* export"},
    # Joint meetings: the host's admins run them; a liaison reads its bodies' meetings and
    # writes the progress reports of the resolutions its unit leads.
    **{resource: {ADMINS + " UnitLiaison": "read", ADMINS: "write export"}
       for resource in ("joint_body", "body_member", "meeting", "attendance", "agenda_item",
                        "resolution")},
    "supervision_note": {ADMINS + " UnitLiaison": "read", ADMINS: "write export",
                         "UnitLiaison": "add* edit*"},
    # 工作要点 and 季度督查: a node's admins keep its plan; the street and 组织部 inspect, the
    # community inspected reads; units read what they answer for and report its progress.
    "work_plan_item": {ADMINS + " UnitLiaison": "read", ADMINS: "write export"},
    **{resource: {ADMINS + " UnitLiaison": "read", "OrgAdmin StreetAdmin": "write",
                  ADMINS: "export"}
       for resource in ("inspection", "inspection_finding")},
    # Opened by saving its failing finding: no add (NOT_OFFERED below).
    "rectification": {ADMINS + " UnitLiaison": "read", "OrgAdmin StreetAdmin": "edit* delete*",
                      ADMINS: "export"},
    **{resource: {ADMINS + " UnitLiaison": "read", ADMINS: "write export",
                  "UnitLiaison": "add* edit*"}
       for resource in ("work_plan_note", "rectification_note")},
    "inspection_item": {ADMINS + " UnitLiaison": "read", "OrgAdmin": "write export"},
    # Co-building.
    "agreement": {ADMINS + " UnitLiaison": "read", ADMINS: "write export"},
    "unit_registration": {ADMINS + " UnitLiaison": "read write", ADMINS: "export"},
    "member_registration": {EVERYONE: "read", ADMINS: "write export",
                            "UnitLiaison": "write", "Member": "add*"},
    "service_post": {EVERYONE: "read", ADMINS: "write export"},
    "post_claim": {EVERYONE: "read", ADMINS: "add* delete* export", "Member": "add*"},
    "service_record": {EVERYONE: "read", ADMINS: "write export", "UnitLiaison": "write",
                       "Member": "add* edit*", "GridAdmin": "add*"},
    "point_rule": {EVERYONE: "read", "OrgAdmin": "write export"},
    "point_entry": {EVERYONE: "read", ADMINS: "export"},
    "star_rating": {EVERYONE: "read", "OrgAdmin StreetAdmin": "export"},
    # 月汇报: each admin writes its node's report; the node above reviews it (the moves'
    # rules); the auditor reads and exports; units and members see none.
    "work_report": {ADMINS: "read write export"},
    # 年度考核: 组织部 sets the indicator set; the results are computed by its run and moved
    # (adjusted, reviewed, published), never written by hand. A community reads its own, a
    # unit its own; the admins export what they read.
    "assessment_indicator": {EVERYONE: "read", "OrgAdmin": "write export"},
    "assessment": {ADMINS + " UnitLiaison": "read", ADMINS: "export"},
    "audit_log": {},
}

IMPORTABLE = {"organization", "unit", "member", "resource", "service_item", "need", "micro_wish"}
SERVICE_WRITTEN = "add edit delete bulk api_post api_put api_delete"
NOT_OFFERED = {r: "import" for r in TABLE if r not in IMPORTABLE}
for _resource in ("point_entry", "star_rating", "assessment", "audit_log"):
    NOT_OFFERED[_resource] += " " + SERVICE_WRITTEN
NOT_OFFERED["rectification"] += " add api_post"

# Workflow moves (DOMAIN.md §2–§3): resource → {roles: moves}. Admin makes every move.
MOVES = {
    "need": {ADMINS: "accept reject dispatch complete review reopen",
             "UnitLiaison": "take decline complete", "Member": "take complete"},
    "resource": {ADMINS: "submit publish reject withdraw", "UnitLiaison": "submit withdraw"},
    "service_item": {ADMINS: "submit publish reject start finish",
                     "UnitLiaison": "submit start finish"},
    "need_resource": {"UnitLiaison": "confirm decline"},
    "micro_wish": {ADMINS: "publish reject cancel fulfil confirm",
                   "UnitLiaison Member": "claim cancel fulfil"},
    "meeting": {ADMINS: "hold cancel replan"},
    "resolution": {ADMINS: "start close reopen", "UnitLiaison": "start"},
    "work_plan_item": {ADMINS: "start close reopen", "UnitLiaison": "start"},
    # Only the inspecting side closes a rectification (the moves' rule, on rows in scope).
    "rectification": {ADMINS: "start close reopen", "UnitLiaison": "start"},
    "inspection": {ADMINS: "publish withdraw"},
    "agreement": {ADMINS: "sign terminate"},
    "unit_registration": {ADMINS: "confirm cancel"},
    "member_registration": {ADMINS: "confirm transfer_out cancel"},
    "post_claim": {ADMINS + " Member": "withdraw"},
    "service_record": {ADMINS: "certify reject revoke resubmit",
                       "UnitLiaison Member": "resubmit"},
    "star_rating": {"OrgAdmin StreetAdmin": "review publish"},
    "work_report": {ADMINS: "submit", "OrgAdmin": "file", "OrgAdmin StreetAdmin": "approve return"},
    "assessment": {"OrgAdmin": "adjust publish", "OrgAdmin StreetAdmin": "review"},
}


def _expand(words: str) -> set[str]:
    ops = set()
    for word in words.split():
        ops |= set(SHORT[word].split()) if word in SHORT else {word}
    return ops


def all_moves(resource: str) -> list[str]:
    seen = []
    for moves in MOVES.get(resource, {}).values():
        seen += [m for m in moves.split() if m not in seen]
    return seen


def operations(resource: str) -> list[str]:
    """Every operation of a resource: the CRUD/data ones and its moves, each move through
    the API (`move:`) and through the show page's form (`form move:`)."""
    moves = all_moves(resource)
    return OPS + [f"move:{m}" for m in moves] + [f"form move:{m}" for m in moves]


def offered(resource: str, op: str) -> bool:
    return op not in NOT_OFFERED.get(resource, "").split()


def allowed(role: str, resource: str, op: str) -> bool:
    if not offered(resource, op):
        return False
    if role == "Admin":
        return True
    if "move:" in op:
        return any(role in roles.split() and op.split(":")[1] in moves.split()
                   for roles, moves in MOVES.get(resource, {}).items())
    if role == "Auditor":
        return op in _expand("read export")
    return any(role in roles.split() and op in _expand(ops)
               for roles, ops in TABLE[resource].items())


def cells():
    """Every (role, resource, operation) of the matrix."""
    return [(role, resource, op) for role in ROLES for resource in TABLE
            for op in operations(resource)]
