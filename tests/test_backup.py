"""Backups (issue 8): `flask backup` copies the SQLite database while it is in use, `flask restore`
puts a backup into a fresh database where every row is found again; both are recorded, and a file
that is not a backup is refused. (PostgreSQL and MariaDB use their own tools: README, 部署.)"""
import json
import os
import sqlite3
import stat

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url


@pytest.fixture
def sqlite_only(database_url):
    if make_url(database_url).get_backend_name() != "sqlite":
        pytest.skip("flask backup / flask restore handle SQLite; other databases: README")


def every_row(url: str, tables=None) -> dict[str, list[tuple]]:
    """Each table's rows, in primary-key order (all columns)."""
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        rows = {}
        with engine.connect() as connection:
            for table in tables or inspector.get_table_names():
                keys = inspector.get_pk_constraint(table)["constrained_columns"] or \
                    [c["name"] for c in inspector.get_columns(table)]
                order = ", ".join(f'"{k}"' for k in keys)
                rows[table] = [tuple(r) for r in connection.execute(
                    text(f'SELECT * FROM "{table}" ORDER BY {order}'))]
        return rows
    finally:
        engine.dispose()


def cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


def test_a_backup_restored_into_a_fresh_database_holds_every_row(app, ctx, database_url,
                                                               sqlite_only, tmp_path):
    before = every_row(database_url)
    assert before["member"] and before["audit_log"] and before["ab_user"]
    target = tmp_path / "backup.db"
    result = cli(app, "backup", str(target))
    assert result.exit_code == 0, result.output
    assert "已备份" in result.output
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600, "readable by its owner only"
    # The backup is recorded in the live database (after the copy was taken).
    entry = ctx.execute(text("SELECT action, resource, username, changes FROM audit_log "
                             "ORDER BY id DESC")).first()
    assert (entry.action, entry.resource, entry.username) == ("export", "backup", "system")
    assert json.loads(entry.changes)["file"] == str(target)

    fresh = tmp_path / "fresh.db"
    fresh_url = f"sqlite:///{fresh}"
    result = cli(app, "restore", str(target), "--to", fresh_url, "--yes")
    assert result.exit_code == 0, result.output
    after = every_row(fresh_url)
    assert set(after) == set(before)
    for table, rows in before.items():
        if table == "audit_log":
            continue
        assert after[table] == rows, table
    # Every audit record is back, plus the restore's own, written into the restored database.
    assert after["audit_log"][:len(before["audit_log"])] == before["audit_log"]
    restored = after["audit_log"][len(before["audit_log"]):]
    assert [(r[3], r[4], r[5]) for r in restored] == [("system", "import", "backup")]


def test_a_restore_keeps_what_it_replaces(app, sqlite_only, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "BACKUP_FOLDER", str(tmp_path / "kept"))
    backup_file = tmp_path / "b.db"
    assert cli(app, "backup", str(backup_file)).exit_code == 0
    existing = tmp_path / "existing.db"
    connection = sqlite3.connect(existing)
    connection.execute("CREATE TABLE note (text TEXT)")
    connection.execute("INSERT INTO note VALUES ('之前的数据')")
    connection.commit()
    connection.close()
    result = cli(app, "restore", str(backup_file), "--to", f"sqlite:///{existing}", "--yes")
    assert result.exit_code == 0, result.output
    kept = list((tmp_path / "kept").glob("*-before-restore.db"))
    assert len(kept) == 1
    assert sqlite3.connect(kept[0]).execute("SELECT text FROM note").fetchall() == [("之前的数据",)]


def test_what_is_not_a_backup_is_refused(app, sqlite_only, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    fresh = tmp_path / "fresh.db"
    result = cli(app, "restore", str(junk), "--to", f"sqlite:///{fresh}", "--yes")
    assert result.exit_code != 0 and "不是" in result.output
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    result = cli(app, "restore", str(other), "--to", f"sqlite:///{fresh}", "--yes")
    assert result.exit_code != 0 and "不是本系统的数据库备份" in result.output
    assert not fresh.exists() or fresh.stat().st_size == 0
    result = cli(app, "backup", str(tmp_path / "x.db"))
    assert result.exit_code == 0
    result = cli(app, "backup", str(tmp_path / "x.db"))
    assert result.exit_code != 0 and "不会覆盖" in result.output


def test_other_databases_are_told_the_documented_way(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "SQLALCHEMY_DATABASE_URI",
                        "postgresql+psycopg2://postgres@127.0.0.1/anything")
    result = cli(app, "backup", str(tmp_path / "x.dump"))
    assert result.exit_code != 0 and "pg_dump -Fc" in result.output
