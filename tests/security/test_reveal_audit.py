"""The record of who saw personal data in full (issue 17 finding 8): a reveal record was lost
when its write met SQLite's "database is locked"; the write is tried again. A streamed export
records its reveal before its first row (with its export record), not after its last."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from tests.security.support import Clients

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def clients(app):
    return Clients(app)


def reveals_since(ctx, mark, username):
    return ctx.execute(text("SELECT resource, record_id, changes FROM audit_log WHERE id > :m "
                            "AND action = 'reveal' AND username = :u ORDER BY id"),
                       {"m": mark, "u": username}).all()


def mark_of(ctx):
    return ctx.execute(text("SELECT COALESCE(MAX(id), 0) FROM audit_log")).scalar()


def waited_out(dialect: str) -> Exception:
    """The driver's error for a writer that waited out another's lock, with the code by which
    app.errors.race_of knows it (SQLITE_BUSY, PostgreSQL 55P03, MySQL 1205)."""
    if dialect == "sqlite":
        import sqlite3

        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = 5
        return error
    if dialect == "postgresql":
        import psycopg2.errors

        return type("LockNotAvailable", (psycopg2.errors.LockNotAvailable,),
                    {"pgcode": "55P03"})("canceling statement due to lock timeout")
    import pymysql

    return pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")


@pytest.fixture
def locked_twice(app):
    """The next two writes of a reveal record fail as SQLite fails a writer that waited past
    its busy timeout, on whichever database the run uses (the driver's own error class)."""
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    failures = {"left": 2, "seen": 0}

    def refuse(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_LOG") and failures["left"] \
                and "reveal" in str(parameters):
            failures["left"] -= 1
            failures["seen"] += 1
            # What SQLAlchemy raises for the driver's own error (a listener's is not wrapped).
            raise OperationalError(statement, parameters, waited_out(engine.dialect.name))

    event.listen(engine, "before_cursor_execute", refuse)
    yield failures
    event.remove(engine, "before_cursor_execute", refuse)


def test_a_reveal_met_by_a_lock_is_recorded_all_the_same(clients, ctx, locked_twice):
    member = ctx.execute(text("SELECT member_id FROM ab_user WHERE username = 'dangyuan01'")).scalar()
    client, headers = clients.api("shequ01")
    mark = mark_of(ctx)
    response = client.get(f"/api/v1/member/{member}", headers=headers)
    assert response.status_code == 200
    assert locked_twice["seen"] == 2  # the lock was met, twice
    assert [(r.resource, r.record_id) for r in reveals_since(ctx, mark, "shequ01")] == \
        [("member", str(member))]


def test_a_streamed_export_records_its_reveal_before_its_first_row(clients, ctx):
    browser = clients.browser("shequ01")
    mark = mark_of(ctx)
    response = browser.get("/member/export/csv")
    assert response.status_code == 200
    # Nothing of the body has been read yet: the reveal is already on record.
    try:
        before = reveals_since(ctx, mark, "shequ01")
    finally:
        rows = response.get_data(as_text=True).strip().splitlines()[1:]  # the download ends
    assert len(before) == 1 and before[0].resource == "member"
    told = json.loads(before[0].changes)
    assert told["rows"] == len(rows) > 0
    assert len(told["ids"]) == min(len(rows), 1000)
    # ... and once: the rows it streamed do not write a second record at the end.
    assert len(reveals_since(ctx, mark, "shequ01")) == 1


def test_an_export_by_a_role_that_does_not_reveal_records_no_reveal(clients, ctx):
    mark = mark_of(ctx)
    response = clients.browser("shenji").get("/member/export/csv")
    assert response.status_code == 200 and response.get_data(as_text=True)
    assert reveals_since(ctx, mark, "shenji") == []


def test_an_excel_export_records_its_reveal_with_the_export(clients, ctx):
    mark = mark_of(ctx)
    response = clients.browser("shequ01").get("/member/export/xlsx")
    assert response.status_code == 200
    records = ctx.execute(text("SELECT action FROM audit_log WHERE id > :m AND username = "
                               "'shequ01' ORDER BY id"), {"m": mark}).scalars().all()
    assert records[:2] == ["export", "reveal"]
    response.get_data()
    assert records.count("reveal") == 1


def test_an_excel_export_met_by_a_lock_still_records_its_reveal(clients, ctx, locked_twice):
    mark = mark_of(ctx)
    response = clients.browser("shequ01").get("/member/export/xlsx")
    assert response.status_code == 200
    response.get_data()
    assert locked_twice["seen"] == 2  # the export's record and its reveal were written again
    assert [r.resource for r in reveals_since(ctx, mark, "shequ01")] == ["member"]
