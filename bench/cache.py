"""The benchmark's databases, built once into a cache outside the clone and reused.

One database per (engine, scale): SQLite files under ``BENCH_DATA`` (default
``~/.cache/gongjian-bench/``, or ``$XDG_CACHE_HOME/gongjian-bench/``), PostgreSQL databases
``gongjian_bench_<scale>`` on ``BENCH_POSTGRES`` (default ``postgresql+psycopg2://postgres@127.0.0.1``).
A database counts as built only when its ``bench_cache`` row exists — written in the same run
after the seed committed — so an interrupted build is thrown away and redone, never measured.
Every use first upgrades the schema to the migrations' head and re-syncs the roles, as
`make run` does, so a cache built before a new migration (indexes) is measured with it.

Building and upgrading run in a child process (`python -m bench.cache build|upgrade URL SCALE`):
the application's extensions are process-wide and each database gets its own app.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
_cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
BENCH_DATA = Path(os.environ.get("BENCH_DATA") or _cache_home / "gongjian-bench").expanduser()
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1")
# The demo users' password in the bench databases (fake data, loopback only).
PASSWORD = os.environ.get("DEMO_PASSWORD") or "Bench-Passw0rd!"
# Fixed keys: the data is generated, and the server must decrypt what the seed encrypted.
DATA_KEY = "gongjian-bench-data-key-0123456789abcdef0123456789"
SECRET_KEY = "gongjian-bench-secret-key-0123456789abcdef0123456789"
MARKER = "bench_cache"


def database_url(engine: str, scale: str) -> str:
    if engine == "sqlite":
        return f"sqlite:///{BENCH_DATA / f'{scale}.db'}"
    return f"{POSTGRES.rstrip('/')}/gongjian_bench_{scale}"


@dataclass(frozen=True)
class Database:
    """A built bench database and the secrets its rows were made with."""

    url: str
    scale: str
    password: str = PASSWORD
    data_key: str = DATA_KEY

    @property
    def engine(self) -> str:
        return make_url(self.url).get_backend_name()

    def env(self) -> dict:
        return app_env(self.url, self.password, self.data_key)


def app_env(url: str, password: str = PASSWORD, data_key: str = DATA_KEY) -> dict:
    """The environment the application runs with against a bench database (build, serve)."""
    env = dict(os.environ)
    env.update({
        "GONGJIAN_CONFIG": "development", "DATABASE_URL": url, "GONGJIAN_DATA_KEY": data_key,
        "SECRET_KEY": SECRET_KEY, "GONGJIAN_INSTANCE": str(BENCH_DATA / "instance"),
        "DEMO_PASSWORD": password, "FLASK_APP": "run.py", "PYTHONPATH": str(ROOT),
    })
    return env


def postgres_reachable() -> bool:
    try:
        engine = create_engine(f"{POSTGRES.rstrip('/')}/postgres")
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def _built(url: str) -> dict | None:
    """The marker row of a completely built database, or None."""
    if url.startswith("sqlite") and not Path(make_url(url).database).exists():
        return None
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            row = conn.execute(text(f"SELECT scale, password, data_key, built_on, seconds "
                                    f"FROM {MARKER}")).first()
        engine.dispose()
    except Exception:  # no database, no marker table: not built
        return None
    return dict(row._mapping) if row else None


def _recreate(url: str) -> None:
    """An empty database where an incomplete one may have been left."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}" ENCODING \'UTF8\' TEMPLATE template0'))
    admin.dispose()


def ensure(engine: str, scale: str, echo=print) -> Database:
    """A built database of this scale, migrated to head; built the first time."""
    url = database_url(engine, scale)
    marker = _built(url)
    if marker:
        database = Database(url, scale, marker["password"], marker["data_key"])
        echo(f"  {engine}/{scale}: cached ({marker['built_on']}, built in {marker['seconds']:.0f} s); "
             "upgrading to head")
        _child("upgrade", database)
        return database
    database = Database(url, scale)
    echo(f"  {engine}/{scale}: building into {url} (once; reused by later runs)")
    _recreate(url)
    _child("build", database)
    return database


def _child(command: str, database: Database) -> None:
    subprocess.run([sys.executable, "-m", "bench.cache", command, database.url, database.scale],
                   cwd=ROOT, env=database.env(), check=True)


def _mark(conn, scale: str, password: str, data_key: str, seconds: float) -> None:
    conn.execute(text(f"CREATE TABLE {MARKER} (scale VARCHAR(16), password VARCHAR(100), "
                      "data_key VARCHAR(200), built_on VARCHAR(32), seconds FLOAT)"))
    conn.execute(text(f"INSERT INTO {MARKER} VALUES (:s, :p, :k, :b, :t)"),
                 {"s": scale, "p": password, "k": data_key,
                  "b": time.strftime("%Y-%m-%d %H:%M"), "t": seconds})


def adopt(source: str, scale: str, password: str, data_key: str, seconds: float) -> None:
    """Take a database built elsewhere by `flask seed demo --scale …` (with that password
    and GONGJIAN_DATA_KEY) into the cache instead of building it again: a SQLite file is
    copied by sqlite3's online backup; a PostgreSQL database is cloned as a template."""
    import sqlite3

    engine = "sqlite" if source.endswith(".db") or source.startswith("sqlite") else "postgresql"
    url = database_url(engine, scale)
    _recreate(url)
    if engine == "sqlite":
        path = make_url(source).database if source.startswith("sqlite") else source
        with sqlite3.connect(path) as src, sqlite3.connect(make_url(url).database) as dst:
            src.backup(dst)
    else:
        parsed = make_url(url)
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{parsed.database}"'))
            conn.execute(text(f'CREATE DATABASE "{parsed.database}" TEMPLATE "{make_url(source).database}"'))
        admin.dispose()
    engine_ = create_engine(url)
    with engine_.begin() as conn:
        _mark(conn, scale, password, data_key, seconds)
    engine_.dispose()
    print(f"adopted {source} as {url}")


# --- in the child process ----------------------------------------------------------------------

def _app(url: str):
    from app import create_app

    return create_app("development", SQLALCHEMY_DATABASE_URI=url)


def _migrate() -> None:
    from flask_migrate import upgrade

    from app.cli import sync_roles
    from app.extensions import db
    from app.services.defaults import ensure_dictionary

    upgrade(revision="heads")
    sync_roles()
    ensure_dictionary(db.session)
    db.session.commit()


def build(url: str, scale: str) -> None:
    from app.extensions import db
    from seed.demo import seed_demo

    started = time.perf_counter()
    with _app(url).app_context():
        _migrate()
        seed_demo(scale=scale, password=PASSWORD, echo=lambda *a: print(*a, flush=True))
        seconds = time.perf_counter() - started
        db.session.remove()
        with db.engine.begin() as conn:
            _mark(conn, scale, PASSWORD, DATA_KEY, seconds)
        _analyze(db.engine, vacuum=True)
        print(f"  built {scale} in {seconds:.0f} s", flush=True)


def _analyze(engine, vacuum: bool = False) -> None:
    """The planner's statistics, as a deployed database keeps them (autovacuum, PRAGMA optimize)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE" if vacuum else "ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def upgrade(url: str, scale: str) -> None:
    from app import rollups
    from app.extensions import db

    with _app(url).app_context():
        revision = "SELECT version_num FROM alembic_version"
        with db.engine.connect() as conn:
            before = set(conn.execute(text(revision)).scalars())
        _migrate()
        db.session.remove()
        with db.engine.begin() as conn:  # what beat's job does in the minute after a migration
            started = time.perf_counter()
            if rollups.apply(conn):
                print(f"  rollups computed in {time.perf_counter() - started:.0f} s", flush=True)
        with db.engine.connect() as conn:
            after = set(conn.execute(text(revision)).scalars())
        if after != before:  # new indexes: statistics for them too
            print(f"  migrated {sorted(before)} -> {sorted(after)}; analysing", flush=True)
            _analyze(db.engine)


if __name__ == "__main__":
    if sys.argv[1] == "adopt":  # adopt SOURCE SCALE PASSWORD DATA_KEY SECONDS
        adopt(*sys.argv[2:6], float(sys.argv[6]))
    else:
        {"build": build, "upgrade": upgrade}[sys.argv[1]](sys.argv[2], sys.argv[3])
