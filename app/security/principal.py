"""Who acts (DOMAIN.md §4): the principal of a request, a CLI command or a test.

Kept apart from the data scope (app/security/scope.py), which says what a principal may see: the
models ask who acts (`current_principal`), run their rules' look-ups `unscoped` and mask personal
data (`sees_personal_data`) without importing the scope's filters — as SQLAlchemy's
`filter_public` example has models carry a marker and never import the listener that reads it.
This module imports only Flask and roles.py; the scope imports it.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import current_app, g, has_app_context, has_request_context

from app.security.roles import ALL, PERSONAL_DATA_PERMISSION, ROLE_SCOPES, SELF, SUBTREE, UNIT


@dataclass(frozen=True)
class Principal:
    user_id: int | None = None
    role_names: frozenset[str] = frozenset()
    sees_all: bool = False
    org_paths: tuple[str, ...] = ()
    unit_ids: tuple[int, ...] = ()
    member_ids: tuple[int, ...] = ()
    authenticated: bool = False
    system: bool = False
    # The permission `can_reveal` on member (roles.py): 身份证号 and phone shown in full.
    reveals_personal_data: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)


SYSTEM = Principal(system=True, sees_all=True, authenticated=True)
ANONYMOUS = Principal()


def principal_for(user) -> Principal:
    """The principal of a logged-in user: the union of what each of its roles grants."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    roles = frozenset(r.name for r in user.roles)
    levels = {ROLE_SCOPES.get(name) for name in roles}
    org_paths, unit_ids, member_ids = (), (), ()
    if SUBTREE in levels and user.org is not None:
        org_paths = (user.org.path,)
    if UNIT in levels and user.unit_id:
        unit_ids = (user.unit_id,)
    if SELF in levels and user.member_id:
        member_ids = (user.member_id,)
    permission, view_menu = PERSONAL_DATA_PERMISSION
    reveals = bool(user.roles) and current_app.appbuilder.sm.exist_permission_on_roles(
        view_menu, permission, [r.id for r in user.roles])
    return Principal(
        user_id=user.id,
        role_names=roles,
        sees_all=ALL in levels,
        org_paths=org_paths,
        unit_ids=unit_ids,
        member_ids=member_ids,
        authenticated=True,
        reveals_personal_data=reveals,
        extra={"username": user.username},
    )


def _request_user():
    """The user of this request, logged in by session cookie or by API token."""
    try:
        return current_app.appbuilder.sm.current_user
    except RuntimeError:  # an API request whose token has not been verified (yet)
        return None


def current_principal() -> Principal:
    """Who is acting: set explicitly (`acting_as`), else the request's user, else the system."""
    if not has_app_context():
        return SYSTEM
    principal = g.get("principal")
    if principal is not None:
        return principal
    if not has_request_context():
        return SYSTEM
    # Loading the user runs queries of its own, which come back here: they are internal
    # (users, roles, the user's links) and run unscoped.
    with unscoped():
        principal = principal_for(_request_user())
    # Only cache a real answer: before login the same request may still authenticate.
    if principal.authenticated:
        g.principal = principal
    return principal


@contextmanager
def acting_as(principal: Principal):
    """Run a block (a CLI import, a test) with the scope of `principal`."""
    previous = g.get("principal")
    g.principal = principal
    try:
        yield principal
    finally:
        g.principal = previous


_UNSCOPED = "_gongjian_unscoped"


@contextmanager
def unscoped():
    """Run internal look-ups (uniqueness, the principal's own links) without scope filters."""
    if not has_app_context():
        yield
        return
    depth = g.get(_UNSCOPED, 0)
    setattr(g, _UNSCOPED, depth + 1)
    try:
        yield
    finally:
        setattr(g, _UNSCOPED, depth)


def is_unscoped() -> bool:
    return has_app_context() and g.get(_UNSCOPED, 0) > 0


# --- personal data ---------------------------------------------------------------------------

# Which rows a principal owns is the data scope's rule: scope.py hands it here when imported
# (`own_rows_by`), since the models that mask phones cannot import the scope that imports them.
_OWNERSHIP: dict = {}


def own_rows_by(owns, clause) -> None:
    """Install the scope's rule: `owns(row, principal)` and its SQL, `clause(model, principal)`."""
    _OWNERSHIP.update(owns=owns, clause=clause)


def owner_clause(model, principal: Principal):
    """The rows of `model` the principal owns, in SQL (scope.owner_clause)."""
    return _OWNERSHIP["clause"](model, principal)


REVEALED = "personal_data_revealed"


def sees_personal_data(row=None) -> bool:
    """Whether the acting principal sees 身份证号 and phone in full (the permission
    `can_reveal`, granted per role) — on `row`, only if it owns the row: a row read through
    the directory (every unit and node) or by another rule shows its phones masked to every
    role. Showing `row`'s in full to a user is noted for the audit trail: one `reveal` record
    per request (app/security/personal_data.py)."""
    principal = current_principal()
    if principal.system:
        return True
    if not principal.reveals_personal_data:
        return False
    if row is not None and not _OWNERSHIP["owns"](row, principal):
        return False
    if row is not None and has_request_context():
        g.setdefault(REVEALED, {}).setdefault(row.__tablename__, set()).add(row.id)
    return True
