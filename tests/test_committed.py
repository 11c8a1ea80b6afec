"""`committed`, the one place a write that lost a race (or met a failed database) becomes a
message: rolled back once, the loser told what the other user did, a bug left to raise."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from app.errors import DATABASE_FULL, WAITED_OUT, Conflict, DatabaseFailure, DomainError, committed

LOST = "该心愿已被他人认领，请刷新后查看"


class Session:
    """Counts what `committed` asks of a session."""

    def __init__(self, fails_with=None):
        self.commits = self.flushes = self.rollbacks = 0
        self.fails_with = fails_with

    def commit(self):
        if self.fails_with:
            raise self.fails_with
        self.commits += 1

    def flush(self):
        self.flushes += 1

    def rollback(self):
        self.rollbacks += 1


class PgError(Exception):
    def __init__(self, pgcode):
        super().__init__("error")
        self.pgcode = pgcode


def sqlite_error(code: int, message: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code
    return exc


def wrapped(kind, orig):
    return kind("UPDATE …", {}, orig)


@pytest.mark.parametrize("failure", [
    StaleDataError("UPDATE statement on table 'micro_wish' expected to update 1 row(s); 0 were matched."),
    wrapped(IntegrityError, Exception("UNIQUE constraint failed")),
    wrapped(OperationalError, PgError("40001")),  # PostgreSQL: could not serialize access
    wrapped(OperationalError, PgError("40P01")),  # PostgreSQL: deadlock detected
    wrapped(OperationalError, Exception(1213, "Deadlock found when trying to get lock")),
], ids=["version", "unique", "serialization", "pg-deadlock", "mysql-deadlock"])
def test_a_lost_race_is_told_what_the_other_user_did(failure):
    session = Session(failure)
    with pytest.raises(Conflict) as told, committed(session, LOST):
        pass
    assert str(told.value) == LOST
    assert session.rollbacks == 1 and session.commits == 0


@pytest.mark.parametrize("failure", [
    wrapped(OperationalError, sqlite_error(5, "database is locked")),
    wrapped(OperationalError, sqlite_error(517, "database is locked")),  # SQLITE_BUSY_SNAPSHOT
    wrapped(OperationalError, PgError("55P03")),  # PostgreSQL: lock not available
    wrapped(OperationalError, Exception(1205, "Lock wait timeout exceeded")),
], ids=["sqlite-busy", "sqlite-busy-snapshot", "pg-lock", "mysql-lock-wait"])
def test_a_lock_waited_out_says_so_and_asks_to_try_again(failure):
    session = Session(failure)
    with pytest.raises(Conflict, match=WAITED_OUT), committed(session, LOST):
        pass
    assert session.rollbacks == 1


def test_a_full_database_is_a_database_failure_not_a_race():
    session = Session(wrapped(OperationalError, sqlite_error(13, "database or disk is full")))
    with pytest.raises(DatabaseFailure, match=DATABASE_FULL), committed(session, LOST):
        pass
    assert session.rollbacks == 1


def test_a_rule_and_a_bug_pass_through_after_one_rollback():
    for raised in (DomainError("请填写标题", "title"), ZeroDivisionError()):
        session = Session()
        with pytest.raises(type(raised)), committed(session, LOST):
            raise raised
        assert session.rollbacks == 1 and session.commits == 0


def test_flush_only_leaves_the_commit_to_the_caller():
    session = Session()
    with committed(session, LOST, commit=False):
        pass
    assert (session.flushes, session.commits, session.rollbacks) == (1, 0, 0)


@pytest.mark.db
def test_a_unique_key_taken_meanwhile_on_the_real_database(app, ctx):
    """Two writers of the same dictionary code: the second is told, and nothing is left open."""
    from app.models.org import Dictionary
    from app.security.scope import unscoped

    with ctx.session() as first, unscoped():
        first.add(Dictionary(kind="need_category", code="race-test", label="先到"))
        first.commit()
    with ctx.session() as second, unscoped():
        with pytest.raises(Conflict, match="已有同名"), committed(second, "已有同名字典项"):
            second.add(Dictionary(kind="need_category", code="race-test", label="后到"))
        # Rolled back: the session is usable again.
        assert second.execute(text("SELECT count(*) FROM dictionary WHERE code = 'race-test'")
                              ).scalar() == 1
        second.execute(text("DELETE FROM dictionary WHERE code = 'race-test'"))
        second.commit()
