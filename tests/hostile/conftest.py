"""The hostile tests write into the session's shared database (imports that succeed, fuzzed API
writes, stored payloads): each module puts every business table back as it found it, so that the
tests after it see the seeded data."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, tuple_


def _key(table):
    return [c for c in table.primary_key.columns]


def _rows(session, table) -> dict:
    key = _key(table)
    return {tuple(row._mapping[c.name] for c in key): dict(row._mapping)
            for row in session.execute(select(table))}


@pytest.fixture(scope="module", autouse=True)
def tables_kept(app):
    from app.extensions import db

    with app.app_context():
        tables = [t for t in db.Model.metadata.sorted_tables
                  if not t.name.startswith("ab_") and _key(t)]
        saved = {t.name: _rows(db.session, t) for t in tables}
        db.session.remove()
    yield
    with app.app_context():
        session = db.session
        current = {t.name: _rows(session, t) for t in tables}
        for table in reversed(tables):  # rows the module added: children before parents
            added = [k for k in current[table.name] if k not in saved[table.name]]
            key = _key(table)
            for start in range(0, len(added), 500):
                session.execute(delete(table).where(
                    tuple_(*key).in_(added[start:start + 500])))
        for table in tables:  # rows it changed or removed: parents before children
            for k, row in saved[table.name].items():
                now = current[table.name].get(k)
                if now is None:
                    session.execute(insert(table).values(**row))
                elif now != row:
                    where = [c == v for c, v in zip(_key(table), k)]
                    session.execute(table.update().where(*where).values(**row))
        session.commit()
        session.remove()
