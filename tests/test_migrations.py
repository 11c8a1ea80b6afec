"""The schema belongs to Alembic: one head, models and migrations agree, and the migrations
go up from empty, down to base and up again on each database."""
import os
import tempfile
from datetime import datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_appbuilder import Model
from sqlalchemy import Integer, MetaData, create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from app import MIGRATIONS_DIR
from tests.conftest import create_database, empty_database

pytestmark = pytest.mark.db


def alembic_config() -> Config:
    config = Config(os.path.join(MIGRATIONS_DIR, "alembic.ini"))
    config.set_main_option("script_location", MIGRATIONS_DIR)
    return config


def test_there_is_exactly_one_head():
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_models_and_migrations_agree(app):
    from app.extensions import db

    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Model.metadata) == []


@pytest.fixture
def scratch_url(database_url):
    """A second, empty database beside the test database, of the same kind."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        handle, path = tempfile.mkstemp(suffix=".db")
        os.close(handle)
        yield f"sqlite:///{path}"
        os.unlink(path)
        return
    scratch = url.set(database=f"{url.database}_migrations").render_as_string(
        hide_password=False)
    create_database(scratch)
    empty_database(scratch)
    yield scratch


def test_upgrade_downgrade_upgrade(app, scratch_url):
    engine = create_engine(scratch_url)
    config = alembic_config()
    business = {"organization", "unit", "member", "dictionary", "audit_log", "ab_user"}
    with app.app_context():
        for step, target in (("upgrade", "head"), ("downgrade", "base"), ("upgrade", "head")):
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                getattr(command, step)(config, target)
            tables = set(inspect(engine).get_table_names())
            if step == "upgrade":
                assert business <= tables
            else:
                assert tables <= {"alembic_version"}
    engine.dispose()


# --- an upgrade with data: the seeded district, in the schema of the revision before head ------

# Tables whose rows the upgrade must keep, and the fewest rows the `test` seed puts in each:
# a copy that silently lost a table would otherwise compare empty with empty.
SEEDED = {"organization": 10, "unit": 8, "member": 60, "ab_user": 9, "dictionary": 20,
          "resource": 10, "need": 30, "micro_wish": 20, "meeting": 50, "service_record": 100,
          "point_entry": 100, "audit_log": 1}


def same(row: tuple) -> tuple:
    return row


def as_utc(row: tuple) -> tuple:
    """0009_utc_timestamps reads every stored instant as the zone's wall clock (its assumption)
    and writes it in UTC."""
    from app import clock

    return tuple(clock.to_utc(v) if isinstance(v, datetime) else v for v in row)


# What the head revision does to the copied values, where it changes them (not the rows).
CHANGED_BY = {"0009_utc_timestamps": as_utc}
# Change logs a migration appends to: the rollups' marks (a new rollup's cells to compute).
CHANGE_LOGS = {"rollup_mark"}


def previous_revisions(config) -> tuple[str, ...]:
    """The revision(s) just before the head, read from the script directory (never written
    down here: a new migration moves them)."""
    scripts = ScriptDirectory.from_config(config)
    down = scripts.get_revision(scripts.get_current_head()).down_revision
    assert down, "the head is the first migration: there is no upgrade with data to test"
    return down if isinstance(down, tuple) else (down,)


def reflect(engine) -> MetaData:
    meta = MetaData()
    meta.reflect(engine)
    if "alembic_version" in meta.tables:
        meta.remove(meta.tables["alembic_version"])
    return meta


def rows_of(connection, table, columns) -> list[tuple]:
    key = [table.c[c] for c in columns if table.c[c].primary_key] or [table.c[c] for c in columns]
    return [tuple(row) for row in connection.execute(
        select(*[table.c[c] for c in columns]).order_by(*key))]


def copy_rows(source, target_engine) -> dict[str, list[str]]:
    """Copy every row of the seeded database into the scratch one (at the older revision), in
    the columns that revision has, with Core SQL. Why not seed the scratch database itself:
    `seed_demo` writes through today's models, which may have columns (or tables) the older
    revision lacks; and seeding at head and downgrading would test the downgrade, not the
    upgrade real deployments make. Foreign keys are not checked during the copy, as in a
    restore: the tables reference each other in cycles (users ↔ organisations), and the rows
    come from a database that checked them. Returns the columns copied per table."""
    old, new = reflect(target_engine), reflect(source)
    copied = {}
    with source.connect() as reading, target_engine.begin() as writing:
        dialect = target_engine.dialect.name
        if dialect == "postgresql":
            writing.execute(text("SET session_replication_role = replica"))
        elif dialect == "mysql":
            writing.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for table in old.tables.values():  # in any order: no checks (above)
            if table.name not in new.tables:
                continue
            columns = [c.name for c in table.columns if c.name in new.tables[table.name].c]
            rows = rows_of(reading, new.tables[table.name], columns)
            # What the older revision wrote itself (0028's checklist defaults) is in the copy
            # too, with the same ids: the copy replaces it, as a restore would.
            writing.execute(table.delete())
            if rows:
                writing.execute(table.insert(), [dict(zip(columns, row)) for row in rows])
            copied[table.name] = columns
            # Rows came with their ids: PostgreSQL's sequences must move past them.
            if dialect == "postgresql" and "id" in columns and \
                    isinstance(table.c.id.type, Integer):
                writing.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                    f"coalesce((SELECT max(id) FROM \"{table.name}\"), 0) + 1, false)"))
        if dialect == "postgresql":
            writing.execute(text("SET session_replication_role = DEFAULT"))
        elif dialect == "mysql":
            writing.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    return copied


def test_an_upgrade_keeps_the_seeded_data(app, database_url, scratch_url):
    """The session's database, migrated to head and seeded at the `test` scale, is copied into
    a scratch database migrated only to the revision before head; the upgrade to head must
    keep every row and every value, 身份证号 still decrypting. Then the data-laden schema goes
    down to base."""
    from app import crypto
    from app.validators import normalize_id_number

    config = alembic_config()
    source, scratch = create_engine(database_url), create_engine(scratch_url)
    with app.app_context():
        for revision in previous_revisions(config):
            with scratch.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        copied = copy_rows(source, scratch)
        assert set(SEEDED) <= set(copied), "tables of the seed missing before the head"

        with scratch.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        before, after = reflect(source), reflect(scratch)
        head = ScriptDirectory.from_config(config).get_current_head()
        with source.connect() as was, scratch.connect() as now:
            for name, columns in copied.items():
                kept = rows_of(now, after.tables[name], columns)
                expected = [CHANGED_BY.get(head, same)(row) for row in
                            rows_of(was, before.tables[name], columns)]
                if name in CHANGE_LOGS:  # what the head may add to, keeping every row
                    assert set(expected) <= set(kept), f"{name} lost rows"
                else:
                    assert kept == expected, f"{name} changed"
                assert len(kept) >= SEEDED.get(name, 0), f"{name}: {len(kept)} rows"
            members = now.execute(select(after.tables["member"].c.id_number_enc,
                                         after.tables["member"].c.id_number_hash)).all()
            for encrypted, digest in members:
                number = crypto.decrypt(encrypted)
                assert normalize_id_number(number) == number
                assert crypto.keyed_hash(number) == digest

        # Down to base with the rows in place (up again from empty: the test above).
        with scratch.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(scratch).get_table_names()) <= {"alembic_version"}
    source.dispose()
    scratch.dispose()


# --- 0009: instants from the zone's wall clock to UTC, and back ---------------------------------

def test_instants_move_to_utc_across_daylight_saving_and_back(app, scratch_url):
    """In a zone with daylight saving each stored wall-clock time takes its own offset (New
    York: -5 h in winter, -4 h in summer, the change at 02:00 on 8 March 2026); the downgrade
    gives back exactly what was stored; a date column is left alone."""
    config = alembic_config()
    engine = create_engine(scratch_url)
    # (the last with a fraction just short of a second: kept, never rounded into the next)
    walls = [datetime(2026, 3, 8, 1, 30), datetime(2026, 3, 8, 3, 30),
             datetime(2026, 7, 1, 12, 0), datetime(2026, 11, 1, 12, 0),
             datetime(2026, 7, 1, 12, 0, 59, 999995)]
    offsets = [timedelta(hours=h) for h in (5, 4, 4, 5, 4)]

    def times(connection):
        return [row[0] for row in connection.execute(
            text("SELECT time FROM audit_log WHERE username = 'tz-probe' ORDER BY id"))]

    saved = app.config.get("GONGJIAN_TIMEZONE")
    app.config["GONGJIAN_TIMEZONE"] = "America/New_York"
    try:
        with app.app_context():
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "0008_sessions")
            audit = MetaData()
            audit.reflect(engine, only=["audit_log"])
            with engine.begin() as connection:
                connection.execute(audit.tables["audit_log"].insert(), [
                    {"time": wall, "username": "tz-probe", "action": "login"} for wall in walls])
            with engine.connect() as connection:  # as the database keeps them (MariaDB: seconds)
                stored = [v if isinstance(v, datetime) else datetime.fromisoformat(v)
                          for v in times(connection)]
            utc = [wall + offset for wall, offset in zip(stored, offsets)]
            for step, target, expected in (("upgrade", "0009_utc_timestamps", utc),
                                           ("downgrade", "0008_sessions", stored)):
                with engine.begin() as connection:
                    config.attributes["connection"] = connection
                    getattr(command, step)(config, target)
                with engine.connect() as connection:
                    found = [v if isinstance(v, datetime) else datetime.fromisoformat(v)
                             for v in times(connection)]
                assert found == expected, step
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.downgrade(config, "base")
    finally:
        app.config["GONGJIAN_TIMEZONE"] = saved
        engine.dispose()
