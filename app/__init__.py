"""The application factory: extensions, AppBuilder, views, CLI — in that order."""
from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

from flask import Flask

from config import CONFIGS, INSTANCE_DIR, ProductionConfig, engine_options

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def _sqlite_transactions(engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, begin transactions: otherwise a SAVEPOINT that
    opens a transaction is committed by its RELEASE, and an import that fails half-way would
    keep its first rows. In WAL mode readers and the writer do not block each other (so an
    open read can never deadlock a writer); writers wait for each other a while."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record):
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout = 5000")
        if engine.url.database not in (None, "", ":memory:"):
            dbapi_connection.execute("PRAGMA journal_mode = WAL")

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")

    # A flush of many new rows of one table (an import's batch) is one INSERT … RETURNING id
    # per batch, as on PostgreSQL and MariaDB, instead of one per row. SQLAlchemy matches the
    # ids returned to the rows by sorting them, which needs ids that grow in the order of the
    # VALUES rows: SQLite gives an INTEGER PRIMARY KEY one more than the largest id at each
    # row it inserts (one writer at a time), as MariaDB's AUTO_INCREMENT does, for which
    # SQLAlchemy relies on the same order.
    from sqlalchemy.sql.compiler import InsertmanyvaluesSentinelOpts

    engine.dialect.insertmanyvalues_implicit_sentinel |= InsertmanyvaluesSentinelOpts.AUTOINCREMENT


def _mariadb_without_subquery_cache(engine) -> None:
    """MariaDB 10.11's subquery cache returns wrong rows for a page of a list scoped by
    correlated subqueries (ORDER BY … LIMIT 100, 100 gave 44 of the 90 rows left: the point
    ledger's list as a community admin lost entries); with the cache off the same plan is
    right. MySQL has no such switch, so it is set only on MariaDB."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record):
        if "mariadb" in dbapi_connection.get_server_info().lower():
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION optimizer_switch = 'subquery_cache=off'")


def tune_collector() -> None:
    """The serving process's garbage collector (run.py, and the bench's in-process figures):
    what start-up made (the app, its mappers, views, translations) lives as long as the process,
    so full collections leave it out; young collections run every 5,000 allocations instead of
    700 — a page, an import or an export made in Python allocates objects by the hundred
    thousand, and the default collector took a third of an export's time (docs/DESIGN.md)."""
    gc.freeze()
    gc.set_threshold(5000, 10, 10)


def create_app(config_name: str | None = None, **overrides) -> Flask:
    config_name = config_name or os.environ.get("GONGJIAN_CONFIG", "development")
    config = CONFIGS[config_name]
    if config is ProductionConfig:
        config.check()
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(INSTANCE_DIR), instance_relative_config=False)
    app.config.from_object(config)
    app.config.update(overrides)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    from app import clock, ops
    from app.errors import bound_url_ids

    clock.check_zone(app.config["GONGJIAN_TIMEZONE"])  # stops the start, not a later page
    ops.init_app(app)  # first: every request has its id before any other hook answers
    bound_url_ids(app)
    hops = app.config["PROXY_FIX_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    # FAB's own group admin declares filters its filter converter does not know; harmless.
    logging.getLogger("flask_appbuilder.models.filters").setLevel(logging.ERROR)
    from app import models  # noqa: F401  (every mapper, before anything queries)
    from app.extensions import appbuilder, csrf, db, migrate
    from app.security.scope import check_declarations

    check_declarations()
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True,
                     compare_type=True)
    csrf.init_app(app)
    from app import jobs

    jobs.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _sqlite_transactions(db.engine)
        elif db.engine.dialect.name in ("mysql", "mariadb"):
            _mariadb_without_subquery_cache(db.engine)
    app.config["FAB_BASE_TEMPLATE"] = "gongjian/base.html"
    app.jinja_env.filters["local_time"] = clock.local_text  # instants as the pages show them
    with app.app_context():
        appbuilder.init_app(app, db.session)
        from app.resources import register

        register(appbuilder)

    from app.cli import register_cli
    from app.errors import register_error_handlers

    register_cli(app)
    register_error_handlers(app)
    return app
