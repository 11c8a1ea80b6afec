"""Shared by the security tests: logged-in clients per demo user, writes rolled back, and
rows picked inside (or outside) a user's scope."""
from __future__ import annotations

import weakref
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select

from tests.conftest import api_token, login


class Clients:
    """One logged-in browser and one API token per demo user, made once per module: a login
    is the slowest request there is, and the matrix makes thousands of others."""

    def __init__(self, app):
        self.app = app
        self._browsers, self._tokens, self._csrf = {}, {}, {}
        self._rolled_back: set[str] = set()  # browsers logged in inside `rolled_back`
        _CLIENTS.add(self)

    def browser(self, username):
        if username not in self._browsers:
            self._browsers[username] = login(self.app, username)
            if _ROLLING_BACK:
                self._rolled_back.add(username)
        return self._browsers[username]

    def forget_rolled_back(self):
        """A login inside `rolled_back` wrote its session row there: the rollback ended that
        session (app/security/sessions.py), so the next use logs in afresh."""
        for username in self._rolled_back:
            self._browsers.pop(username, None)
            self._csrf.pop(username, None)
        self._rolled_back.clear()

    def csrf(self, username):
        """The session's CSRF token, read once (it stays valid for the session)."""
        if username not in self._csrf:
            self._csrf[username] = self.browser(username).csrf("/organization/list/")
        return self._csrf[username]

    def post(self, username, url, data=None):
        data = {"csrf_token": self.csrf(username), **(data or {})}
        return self.browser(username).client.post(url, data=data)

    def api(self, username):
        if username not in self._tokens:
            self._tokens[username] = api_token(self.app, username)
        return self.app.test_client(), self._tokens[username]


_CLIENTS: weakref.WeakSet[Clients] = weakref.WeakSet()
_ROLLING_BACK: list = []


@contextmanager
def rolled_back(app):
    """Everything the app writes inside this block is undone at its end: the app's sessions
    run on one connection inside an outer transaction, their commits become savepoints
    (SQLAlchemy's "join an external transaction" recipe), and the outer one is rolled back.
    The session-scoped test database stays as the seed left it for the rest of the suite."""
    from app.extensions import db

    with app.app_context():
        engines = db._app_engines[app]
    engine = engines[None]
    connection = engine.connect()
    connection.name = engine.name  # FAB asks the bind for its dialect's name
    outer = connection.begin()
    factory_kw = db.session.session_factory.kw
    engines[None] = connection  # Flask-SQLAlchemy's get_bind answers with this "engine"
    factory_kw["join_transaction_mode"] = "create_savepoint"
    _ROLLING_BACK.append(connection)
    try:
        yield connection
    finally:
        _ROLLING_BACK.pop()
        factory_kw.pop("join_transaction_mode", None)
        engines[None] = engine
        outer.rollback()
        connection.close()
        for clients in list(_CLIENTS):
            clients.forget_rolled_back()


def model_of(resource):
    from app.models.base import Entity

    return next(m.class_ for m in Entity.registry.mappers
                if getattr(m.class_, "__tablename__", None) == resource)


def user_principal(session, username):
    from flask import current_app

    from app.security.scope import principal_for, unscoped

    User = current_app.appbuilder.sm.user_model
    with unscoped():
        user = session.execute(select(User).where(User.username == username)).scalar_one()
        return principal_for(user)


def sample_ids(app, username, resource) -> dict[str, int | None]:
    """A row `username` owns (may write), one it may read, and one of anybody's — the first
    of each by id, or None when there is none."""
    from app.extensions import db
    from app.security.scope import owner_clause, read_clause, unscoped

    model = model_of(resource)
    alive = select(model.id).order_by(model.id).limit(1)
    if hasattr(model, "deleted_on"):
        alive = alive.where(model.deleted_on.is_(None))
    with app.app_context():
        principal = user_principal(db.session, username)
        with unscoped():
            any_id = db.session.execute(alive).scalar()
            readable = db.session.execute(alive.where(read_clause(model, principal))).scalar()
            owned = db.session.execute(alive.where(owner_clause(model, principal))).scalar()
        db.session.remove()
    return {"owned": owned, "readable": readable, "any": any_id}


def message_of(response) -> str:
    try:
        body = response.get_json(silent=True) or {}
    except Exception:  # noqa: BLE001 — a non-JSON body has no message
        body = {}
    return str(body.get("message", ""))


def record(name: str, line: str) -> None:
    """Print a figure and keep it in the git-ignored artifacts/ folder (docs/RELIABILITY.md
    quotes them)."""
    print(f"\n{line}")
    folder = Path(__file__).resolve().parents[2] / "artifacts"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.txt").write_text(line + "\n", encoding="utf-8")


LIST_PAGE_SIZE = 100  # the most a list page shows (app/views/base.py list_args)


def listed_on_pages(browser, url: str, resource: str, view: str) -> set[int]:
    """The ids a list shows over all its pages, as a user reads them: a page shows at most
    LIST_PAGE_SIZE rows, so the whole list is read page after page until a short one."""
    import re

    sep = "&" if "?" in url else "?"
    found: set[int] = set()
    page = 0
    while True:
        response = browser.get(f"{url}{sep}psize_{view}={LIST_PAGE_SIZE}&page_{view}={page}")
        assert response.status_code == 200, (url, response.status_code)
        shown = re.findall(rf'href="/{resource}/show/(\d+)"', response.get_data(as_text=True))
        found |= {int(pk) for pk in shown}
        if len(set(shown)) < LIST_PAGE_SIZE:
            return found
        page += 1
