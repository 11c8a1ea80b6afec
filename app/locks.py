"""One deploy step at a time: `flask db upgrade` and `flask gongjian init` run under a lock
that the database holds for every host (PostgreSQL's advisory lock, MariaDB's GET_LOCK), so two
hosts starting together on a fresh database do not both create the same tables and rows — the
second waits, then finds the work done. On SQLite a lock file beside the database does it.

The lock is held on a connection of its own, for the whole step: the step's own work may
commit several times (the roles, then the dictionary) and stays under it."""
from __future__ import annotations

import fcntl
import hashlib
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

DEPLOY_LOCK = "gongjian-deploy"
WAIT_SECONDS = 600  # a migration of a large database may take minutes


def _pg_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def deploy_lock(engine, name: str = DEPLOY_LOCK):
    dialect = engine.dialect.name
    if dialect == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.deploy-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if dialect == "postgresql":
            # Waiting is this connection's whole work: DB_STATEMENT_TIMEOUT_MS must not end it.
            connection.execute(text("SET statement_timeout = 0"))
            connection.execute(text(f"SET lock_timeout = '{WAIT_SECONDS}s'"))
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _pg_key(name)})
            release = text("SELECT pg_advisory_unlock(:k)"), {"k": _pg_key(name)}
        else:
            connection.execute(text("SET SESSION max_statement_time = 0"))
            got = connection.execute(text("SELECT GET_LOCK(:n, :t)"),
                                     {"n": name, "t": WAIT_SECONDS}).scalar()
            if got != 1:
                raise RuntimeError(f"另一部署步骤（数据库迁移或初始化）{WAIT_SECONDS} 秒内未结束，"
                                   "请稍后重试")
            release = text("SELECT RELEASE_LOCK(:n)"), {"n": name}
        try:
            yield
        finally:
            try:
                connection.execute(*release)
            except SQLAlchemyError:
                connection.invalidate()  # closing the session releases it as well
