"""Alembic environment. The target is FAB's `Model.metadata`: our tables and FAB's ab_* tables
in one metadata (with Flask-SQLAlchemy 3, a plain `db.metadata` would be another, empty one)."""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from flask_appbuilder import Model

import app.models  # noqa: F401  (registers every table on Model.metadata)
from app.locks import deploy_lock

config = context.config
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")
target_metadata = Model.metadata


def _options():
    return {
        "target_metadata": target_metadata,
        "render_as_batch": True,  # SQLite alters tables by copying them
        "compare_type": True,
    }


def run_migrations_offline():
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    context.configure(url=url, literal_binds=True, **_options())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    # A test may hand over its own connection (to migrate a scratch database).
    given = config.attributes.get("connection")
    if given is not None:
        context.configure(connection=given, **_options())
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = current_app.extensions["migrate"].db.engine
    # Two hosts upgrading at once: the second waits, then finds the revisions applied.
    with deploy_lock(engine), engine.connect() as connection:
        context.configure(connection=connection, **_options())
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
