"""The schema belongs to Alembic: one head, models and migrations agree, and the migrations
go up from empty, down to base and up again on each database."""
import os
import tempfile

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_appbuilder import Model
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from app import MIGRATIONS_DIR
from tests.conftest import empty_database

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
    name = f"{url.database}_migrations"
    admin = create_engine(url.set(database="postgres" if url.get_backend_name() == "postgresql"
                                  else None), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if url.get_backend_name() == "postgresql":
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname=:n"), {"n": name}).first():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"))
    admin.dispose()
    scratch = url.set(database=name).render_as_string(hide_password=False)
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
