"""Test set-up: one database per test process, migrated by Alembic and seeded at the `test` scale.

`TEST_DATABASE_URL` selects PostgreSQL or MariaDB (a scratch database: it is emptied first);
unset means a fresh SQLite file. Tests that must see each database are marked `db`.

`make test` runs the suite in two processes (pytest-xdist, `-n 2 --dist loadfile`). Each
process has its own database: a fresh SQLite file, or on PostgreSQL/MariaDB the given database's
name with the worker's id appended (`gongjian_ci_gw0`, created if missing). A test module runs
whole in one process, in file order, as before; the modules named in SERIAL (real threads racing,
hypothesis with per-example deadlines) all run in one process, one after another.

Which modules ran before a module on the same process is not fixed: a module that writes into
the shared database puts it back — a module-scoped fixture `with tables_kept_by(app): yield`
(as tests/hostile and tests/test_query_counts.py do) — and a module must not rely on rows some
other module left. A test that needs a database of its own (a fresh schema, another seed) builds
it in a child process (tests/test_seed_city.py, tests/test_roles_sync.py): one process has one
application, and so one database.
"""
from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, text

TEST_PASSWORD = "Test-Passw0rd!"
DEMO_USERS = ["admin", "zuzhibu", "jiedao01", "shequ01", "danwei01", "danwei02", "danwei03",
              "shenji", "dangyuan01", "wangge01"]


# Timing-sensitive modules: threads started together against one database, and hypothesis runs
# with a deadline per example. Under `--dist loadfile` they form one unit of work, so they run
# one after another in one process, never beside each other.
SERIAL = {
    "tests/test_concurrency.py", "tests/test_meetings_races.py", "tests/test_cobuild_claims.py",
    "tests/test_cobuild_ledger.py", "tests/hostile/test_import_files.py",
    "tests/hostile/test_openapi.py", "tests/test_rollups.py",
}


def pytest_configure(config):
    # `TEST_CLOCK=2027-01-01T00:05+08:00 make test`: the run starts at that instant and its clock
    # runs on from there — to try the moments a day, a month or a year turns over, since CI runs
    # at whatever hour it is started (a month's first eight hours in the zone are still the last
    # day of the month before in UTC). Child processes that tests start keep the real clock.
    moment = os.environ.get("TEST_CLOCK")
    if moment:
        import time_machine
        time_machine.travel(datetime.fromisoformat(moment), tick=True).start()


def pytest_xdist_make_scheduler(config, log):
    """xdist's `loadfile`, with the SERIAL modules as one unit. (Its `loadgroup` and
    `xdist_group` marks would say the same, but xdist 3.8 groups by rewriting `item._nodeid`,
    which pytest 9 no longer reads: every marked test was scheduled on its own.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModulesAndSerial(LoadFileScheduling):
        def _split_scope(self, nodeid):
            module = super()._split_scope(nodeid)
            return "serial" if module in SERIAL else module

    return ModulesAndSerial(config, log)


def create_database(url: str) -> None:
    """Create a PostgreSQL or MariaDB database if it does not exist (on the same server)."""
    from sqlalchemy.engine import make_url

    url = make_url(url)
    name, backend = url.database, url.get_backend_name()
    # MariaDB: connected to no database (`set(database=None)` would keep the name: None means
    # "unchanged" there, so NamedTuple's _replace).
    server = url.set(database="postgres") if backend == "postgresql" else url._replace(database=None)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if backend == "postgresql":
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname=:n"),
                                {"n": name}).first():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"))
    admin.dispose()


def _database_url(worker: str = "master") -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url and worker == "master":  # one process (`-n 0`, a file run alone): the given name
        create_database(url)
        return url
    if url:  # one database per xdist worker, named after the given one
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        url = parsed.set(database=f"{parsed.database}_{worker}").render_as_string(
            hide_password=False)
        create_database(url)
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
            # Any order (checks off; CASCADE below): sorting warns of the schema's FK cycles.
            for table in meta.tables.values():
                conn.execute(text(f"DROP TABLE `{table.name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        elif engine.dialect.name == "postgresql":
            for table in meta.tables.values():
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
        else:
            meta.drop_all(conn)
    engine.dispose()


def _key(table):
    return list(table.primary_key.columns)


def _rows(session, table) -> dict:
    from sqlalchemy import select

    key = _key(table)
    return {tuple(row._mapping[c.name] for c in key): dict(row._mapping)
            for row in session.execute(select(table))}


@contextmanager
def tables_kept_by(app):
    """Every business table put back as it was found: rows added are deleted, rows changed or
    removed are restored. For a module that writes into the shared database (a module-scoped
    fixture: `with tables_kept_by(app): yield`)."""
    from sqlalchemy import delete, insert, tuple_

    from app.extensions import db

    with app.app_context():
        tables = [t for t in db.Model.metadata.sorted_tables
                  if not t.name.startswith("ab_") and _key(t)]
        saved = {t.name: _rows(db.session, t) for t in tables}
        db.session.remove()
    yield
    with app.app_context():
        session = db.session
        current = {t.name: _rows(session, t) for t in tables}
        for table in reversed(tables):  # rows the module added: children before parents
            added = [k for k in current[table.name] if k not in saved[table.name]]
            key = _key(table)
            for start in range(0, len(added), 500):
                session.execute(delete(table).where(
                    tuple_(*key).in_(added[start:start + 500])))
        for table in tables:  # rows it changed or removed: parents before children
            for k, row in saved[table.name].items():
                now = current[table.name].get(k)
                if now is None:
                    session.execute(insert(table).values(**row))
                elif now != row:
                    where = [c == v for c, v in zip(_key(table), k)]
                    session.execute(table.update().where(*where).values(**row))
        session.commit()
        session.remove()


@pytest.fixture(scope="session")
def database_url(worker_id):
    url = _database_url(worker_id)
    yield url
    if url.startswith("sqlite:///"):  # the scratch file made above, and what stood beside it
        for suffix in ("", "-wal", "-shm", ".deploy-lock"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


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
