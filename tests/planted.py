"""The session a replaced definition's reference test compares old and new on (issues 26, 29)."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import select, text, update

from app import clock


@contextmanager
def planted_session(app, username: str, plant, deleted: dict[str, str]):
    """A session acting as `username` after `plant(session, tables)` and the soft delete of the
    row each of `deleted`'s queries finds — all in one transaction, rolled back after."""
    from app.extensions import db
    from app.models.base import Entity
    from app.security.models import UserAccount
    from app.security.principal import acting_as, principal_for, unscoped

    with app.test_request_context():
        with unscoped():
            user = db.session.scalar(select(UserAccount).where(UserAccount.username == username))
            principal = principal_for(user)
            tables = {t.name: t for t in Entity.metadata.sorted_tables}
            plant(db.session, tables)
            for name, sql in deleted.items():
                pk = db.session.execute(text(sql)).scalar()
                assert pk, f"the demo data has no {name} to delete"
                db.session.execute(update(tables[name]).where(tables[name].c.id == pk)
                                   .values(deleted_on=clock.utcnow()))
        with acting_as(principal):
            try:
                yield db.session
            finally:
                db.session.rollback()
                db.session.remove()
