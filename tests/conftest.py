"""Test set-up: one database per run, migrated by Alembic and seeded at the `test` scale.

`TEST_DATABASE_URL` selects PostgreSQL or MariaDB (a scratch database: it is emptied first);
unset means a fresh SQLite file. Tests that must see each database are marked `db`.
"""
from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager

import pytest
from sqlalchemy import MetaData, create_engine, text

TEST_PASSWORD = "Test-Passw0rd!"
DEMO_USERS = ["admin", "zuzhibu", "jiedao01", "shequ01", "danwei01", "danwei02", "danwei03",
              "shenji", "dangyuan01"]


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    handle, path = tempfile.mkstemp(prefix="gongjian-test-", suffix=".db")
    os.close(handle)
    return f"sqlite:///{path}"


def empty_database(url: str) -> None:
    """Drop every table of a scratch database (a run may have been interrupted)."""
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "mysql":
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for table in meta.sorted_tables:
                conn.execute(text(f"DROP TABLE `{table.name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        elif engine.dialect.name == "postgresql":
            for table in meta.sorted_tables:
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
        else:
            meta.drop_all(conn)
    engine.dispose()


@pytest.fixture(scope="session")
def database_url():
    return _database_url()


@pytest.fixture(scope="session")
def app(database_url):
    from flask_migrate import upgrade

    from app import create_app
    from app.cli import sync_roles
    from app.extensions import db
    from app.services.defaults import ensure_dictionary
    from seed.demo import seed_demo

    empty_database(database_url)
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url)
    with app.app_context():
        upgrade(revision="heads")  # every branch, while areas are built side by side
        sync_roles()
        ensure_dictionary(db.session)
        seed_demo(scale="test", password=TEST_PASSWORD, echo=lambda *a: None)
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _push_request_context():
    """Replaces pytest-flask's: each test request gets its own application context (and so
    its own `g`), as in production, instead of sharing one pushed for the whole test."""
    yield


class Db:
    """Direct database access for a test, as the system. Each call opens and closes its own
    application context, so that the test's requests never share a `g` with it."""

    def __init__(self, app):
        self.app = app

    def execute(self, statement, params=None):
        from app.extensions import db

        with self.app.app_context():
            result = db.session.execute(statement, params or {}).freeze()
            db.session.remove()
        return result()

    def rollback(self):
        """Nothing to roll back: every call above ran in its own session."""

    @contextmanager
    def session(self):
        from app.extensions import db

        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()


@pytest.fixture
def ctx(app):
    return Db(app)


class Browser:
    """A logged-in test client that knows how to post forms with their CSRF token."""

    def __init__(self, client, username):
        self.client, self.username = client, username

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def csrf(self, url="/"):
        page = self.client.get(url).get_data(as_text=True)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
            re.search(r'csrf_token["\']?\s*(?:value|content)=["\']([^"\']+)', page)
        return match.group(1) if match else ""

    def post(self, url, data=None, form_url=None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf(form_url or url))
        return self.client.post(url, data=data, **kw)


def logout(client):
    """Log out as the menu does: a POST with the page's CSRF token."""
    page = client.get("/member/list/", follow_redirects=True).get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    return client.post("/logout/", data={"csrf_token": token})


def login(app, username, password=TEST_PASSWORD) -> Browser:
    client = app.test_client()
    browser = Browser(client, username)
    token = browser.csrf("/login/")
    response = client.post("/login/", data={"username": username, "password": password,
                                            "csrf_token": token})
    assert response.status_code == 302, f"{username} could not log in"
    return browser


@pytest.fixture
def as_user(app):
    return lambda username: login(app, username)


def api_token(app, username, password=TEST_PASSWORD) -> dict:
    client = app.test_client()
    response = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.json['access_token']}"}


@pytest.fixture
def api(app):
    """`api(username)` → (client, headers) for the REST API with a JWT."""
    def make(username):
        return app.test_client(), api_token(app, username)
    return make
