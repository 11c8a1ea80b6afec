"""The recycle bin (回收站, DOMAIN.md §6): a delete is a soft delete, undone by a restore; after
`RECYCLE_RETENTION_DAYS` in the bin a row may be erased for good (`flask gongjian purge`).

Who sees what in the bin is the data scope again: the rows one owns (the write scope) among
the deleted ones, of the resources one may delete. A restore is an ordinary write — the model's
rules and the scope write check judge it, and the audit trail records it as a `restore` — and it
brings back what was deleted with the row (`Entity.__soft_delete_cascade__`). A row whose parent
is still in the bin waits for its parent.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from app import clock, storage
from app.errors import DomainError, committed
from app.models.base import Entity, Model
from app.security.scope import owner_clause, scoped_models, unscoped
from app.services import audit


def binned_models() -> dict[str, type[Entity]]:
    """Every business table, by resource name."""
    return {model.__tablename__: model for model in scoped_models()}


def deleted_rows(model: type[Entity], principal):
    """The deleted rows of `model` the principal may restore (its own, by the write scope)."""
    return (select(model).where(model.deleted_on.is_not(None), owner_clause(model, principal))
            .execution_options(include_deleted=True))


def count_deleted(session, model: type[Entity], principal) -> int:
    stmt = deleted_rows(model, principal)
    return session.execute(select(func.count()).select_from(stmt.subquery())
                           .execution_options(include_deleted=True)).scalar() or 0


def _deleted_parent(session, row: Entity):
    """The first row this one points at that is itself in the bin (a resource's unit)."""
    mapper = row.__mapper__
    for rel in mapper.relationships:
        if rel.direction.name != "MANYTOONE" or not issubclass(rel.mapper.class_, Entity):
            continue
        target = rel.mapper.class_
        for column in rel.local_columns:
            value = getattr(row, mapper.get_property_by_column(column).key, None)
            if value is None:
                continue
            with unscoped():
                parent = session.execute(select(target).where(target.id == value)).scalar()
            if parent is not None and parent.is_deleted:
                return parent
    return None


def restore_rows(session, rows: list[Entity]) -> int:
    """Restore the rows (and what was deleted with them) in one transaction, or none of them.
    Parents first: a row whose parent is in the bin and not restored with it is refused."""
    pending = [row for row in rows if row.is_deleted]
    restored = 0
    with committed(session):  # a unique key a live row took meanwhile: the default message
        while pending:
            waiting = []
            for row in pending:
                if not row.is_deleted:  # came back with its parent (a cascade)
                    continue
                with session.no_autoflush:
                    parent = _deleted_parent(session, row)
                if parent is not None:
                    waiting.append((row, parent))
                    continue
                row.restore()
                restored += 1
            if len(waiting) == len(pending):
                row, parent = waiting[0]
                label = type(parent).__label__ or type(parent).__name__
                raise DomainError(f"“{row}”所属的{label}“{parent}”仍在回收站中，请先恢复它")
            pending = [row for row, _ in waiting]
    return restored


@dataclass
class Purged:
    resource: str
    label: str
    purged: int = 0
    kept: int = 0  # still referenced by other rows: left in the bin


def _deletion_order() -> list[type[Entity]]:
    """Rows that point at others go first (the reverse of the tables' dependency order)."""
    by_table = {model.__table__: model for model in scoped_models()}
    return [by_table[t] for t in reversed(Model.metadata.sorted_tables) if t in by_table]


def _references(model: type[Entity]):
    """(table, column, is a link) for each foreign key naming rows of `model`. Links are rows
    of association tables (not mapped to a class): they go with the row; any other reference,
    live or deleted, keeps it (SQLite does not enforce foreign keys, so they are looked up)."""
    mapped = {mapper.local_table for mapper in Model.registry.mappers}
    for table in Model.metadata.tables.values():
        for fk in table.foreign_keys:
            if fk.column.table is model.__table__:
                yield table, fk.parent, table not in mapped


def _referenced(session, model: type[Entity], row_id: int) -> bool:
    for table, column, link in _references(model):
        if link:
            continue
        stmt = select(column).where(column == row_id)
        if table is model.__table__:  # a tree: its own children
            stmt = stmt.where(table.c.id != row_id)
        if session.execute(stmt.limit(1)).first() is not None:
            return True
    return False


def _files_of(session, table, row_id: int) -> list[int]:
    """The stored files (app/storage.py) a row names."""
    columns = [column for column in table.c
               if any(fk.column.table.name == "stored_file" for fk in column.foreign_keys)]
    if not columns:
        return []
    row = session.execute(select(*columns).where(table.c.id == row_id)).one()
    return [file_id for file_id in row if file_id is not None]


def purge_expired(session, days: int, dry_run: bool = False, now: datetime | None = None
                  ) -> list[Purged]:
    """Erase the rows deleted more than `days` days ago, each with one audit record of kind
    `purge`; a row still referenced by another row stays in the bin. A dry run does the same
    and rolls it back. Run as the system."""
    if days < 0:
        raise DomainError("保留天数不能为负数")
    cutoff = (now or clock.utcnow()) - timedelta(days=days)
    report = []
    session.info[audit.SKIP_ROWS] = True  # one purge record per row, written below
    try:
        for model in _deletion_order():
            table = model.__table__
            outcome = Purged(model.__tablename__, model.__label__ or model.__name__)
            order = [model.depth.desc()] if hasattr(model, "depth") else []
            with unscoped():
                rows = session.execute(
                    select(table.c.id, table.c.deleted_on).where(
                        table.c.deleted_on.is_not(None), table.c.deleted_on < cutoff)
                    .order_by(*order, table.c.id)).all()
            for row_id, deleted_on in rows:
                with unscoped():
                    row = session.get(model, row_id)
                label = str(row) if row is not None else str(row_id)
                if row is not None:
                    session.expunge(row)
                if _referenced(session, model, row_id):
                    outcome.kept += 1
                    continue
                try:
                    with session.begin_nested():
                        for link, column, is_link in _references(model):
                            if is_link:
                                session.execute(delete(link).where(column == row_id))
                        files = _files_of(session, table, row_id)
                        session.execute(delete(table).where(table.c.id == row_id))
                        # Its files (an agreement's scan, a meeting's attachment) go with it.
                        for file_id in files:
                            storage.delete_id(file_id, session)
                except IntegrityError:
                    outcome.kept += 1
                    continue
                audit.record(session, "purge", model.__tablename__, row_id, {
                    "label": label, "deleted_on": deleted_on.isoformat(sep=" ", timespec="seconds"),
                    "retention_days": days})
                outcome.purged += 1
            if outcome.purged or outcome.kept:
                report.append(outcome)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.info.pop(audit.SKIP_ROWS, None)
    return report
