"""Writes that must land although the database is busy.

SQLite lets one writer at a time, and a writer waits for the others only `busy_timeout`
(app/__init__.py): under a burst of logins a write can still fail with "database is locked".
The writes of the login path — the audit record of every attempt, the count's reset after a
success, the lock, the session row — are retried instead, each in a transaction of its own."""
from __future__ import annotations

import time

from sqlalchemy.exc import DBAPIError

from app.errors import race_of

TRIES = 60  # with the waits below, about half a minute of a busy file


def write_retrying(session, write) -> None:
    """`write(session)` then commit; on a busy database, roll back and do it again."""
    session.commit()  # a write begun inside an earlier read may not wait its turn (SQLite WAL)
    for attempt in range(TRIES):
        try:
            write(session)
            session.commit()
            return
        except DBAPIError as exc:
            session.rollback()
            if race_of(exc) != "waited" or attempt == TRIES - 1:
                raise  # a full disk or a lost connection is not waited out
            time.sleep(min(0.05 * (attempt + 1), 0.5))
