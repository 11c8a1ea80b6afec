"""Backups of the whole database (DOMAIN.md §6: nothing may be lost by a slip).

SQLite: `flask backup` copies the live database with sqlite3's online backup API — a consistent
copy while the panel keeps running — and checks the copy; `flask restore FILE` checks a backup
and copies it over the database the same way, after keeping a copy of what it replaces.
PostgreSQL and MariaDB are backed up with their own tools (README, "部署": `pg_dump -Fc` and
`pg_restore`); the commands say so rather than half-doing it.

Each backup and each restore leaves an audit record (of kind export and import, resource
`backup`); a restore's record is written into the restored database, since that is the one
that goes on.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url

from app import clock
from app.errors import DomainError
from app.models.records import AuditLog

OTHER_DATABASES = ("PostgreSQL 请用 pg_dump -Fc 备份、pg_restore 恢复，MariaDB 请用 mariadb-dump，"
                   "步骤见 README 的“部署”一节；flask backup / flask restore 只处理 SQLite 数据库")


@dataclass
class Snapshot:
    path: Path
    revision: str | None
    rows: dict[str, int]  # table -> rows

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def sqlite_file(url: str) -> Path:
    """The file of a SQLite URL; any other database is refused with the documented way."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise DomainError(OTHER_DATABASES)
    if not parsed.database or parsed.database == ":memory:":
        raise DomainError("内存数据库无法备份或恢复")
    return Path(parsed.database)


def _describe(connection: sqlite3.Connection, path: Path) -> Snapshot:
    if connection.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
        raise DomainError(f"{path} 已损坏（SQLite 完整性检查未通过）")
    tables = [name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    if "alembic_version" not in tables or "audit_log" not in tables:
        raise DomainError(f"{path} 不是本系统的数据库备份")
    rows = {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in tables}
    revision = connection.execute("SELECT group_concat(version_num, ',') FROM alembic_version"
                                  ).fetchone()[0]
    return Snapshot(path, revision, rows)


def _copy(source: Path, target: Path) -> None:
    """sqlite3's online backup: page by page, consistent, while others read and write."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def inspect_backup(path: Path) -> Snapshot:
    if not path.is_file():
        raise DomainError(f"找不到备份文件 {path}")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return _describe(connection, path)
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise DomainError(f"{path} 不是可读的 SQLite 数据库（{exc}）") from None


def backup(database_url: str, target: Path) -> Snapshot:
    """Copy the database to `target` (a new file, readable by its owner only) and check it."""
    source = sqlite_file(database_url)
    if not source.is_file():
        raise DomainError(f"数据库文件 {source} 不存在")
    if target.exists():
        raise DomainError(f"{target} 已存在，不会覆盖")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _copy(source, partial)
        os.chmod(partial, 0o600)
        snapshot = inspect_backup(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    snapshot.path = target
    return snapshot


def restore(backup_file: Path, database_url: str, keep_copy: Path | None) -> Snapshot:
    """Copy a checked backup over the database at `database_url` (a new file is created);
    what it replaces is first kept at `keep_copy`."""
    snapshot = inspect_backup(backup_file)
    target = sqlite_file(database_url)
    if keep_copy is not None and target.is_file() and target.stat().st_size:
        _copy(target, keep_copy)
        os.chmod(keep_copy, 0o600)
    target.parent.mkdir(parents=True, exist_ok=True)
    _copy(backup_file, target)
    return snapshot


def record(database_url: str, action: str, details: dict) -> None:
    """The backup's or restore's audit record, written straight into `database_url`."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(AuditLog.__table__).values(
                time=clock.utcnow(), username="system", action=action, resource="backup",
                changes=json.dumps(details, ensure_ascii=False)))
    finally:
        engine.dispose()


def default_name(folder: str) -> Path:
    return Path(folder) / f"gongjian-{clock.local_now():%Y%m%d-%H%M%S}.db"
