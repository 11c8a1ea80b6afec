"""The audit trail at the session level (DOMAIN.md §6).

Every flush reports what it changed; the changes of one transaction are merged per row, and
written as one `AuditLog` record per row and logical operation just before the commit, in the
same transaction — so a write and its record land together or not at all. A workflow move wraps
its change in `operation("transition", ...)` and is recorded as one transition; a login, an
export or an import is recorded with `record(...)`.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from flask import has_request_context, request
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, attributes

from app import clock
from app.models.base import Entity
from app.models.records import AuditLog
from app.security.scope import current_principal

_PENDING = "audit_pending"
SKIP_ROWS = "audit_skip_rows"  # bulk generators record themselves once instead
_OPERATION = "audit_operation"
MASK = "******"
# Bookkeeping columns: their changes are not what anybody did.
_IGNORED = {"created_on", "changed_on", "created_by_id", "changed_by_id", "deleted_by_id",
            "last_login", "login_count", "fail_login_count", "created_by_fk", "changed_by_fk",
            "locked_until",  # a lock is told by the login_failed record that set it
            "credential_version",  # follows the password and active changes recorded
            "step_due_on", "due_rank"}  # a need's place in its list: follows its status and dates
_VERSIONS = "audit_version_changes"


def _audited(obj) -> bool:
    from app.security.models import UserAccount

    return isinstance(obj, (Entity, UserAccount))


def _resource(obj) -> str:
    return obj.__tablename__


def _masked_fields(obj) -> frozenset[str]:
    return getattr(obj, "__audit_masked__", frozenset()) | {"password"}


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _diff(obj, created: bool) -> dict:
    changes = {}
    masked = _masked_fields(obj)
    for attr in inspect(obj).mapper.column_attrs:
        key = attr.key
        if key in _IGNORED or key == "id":
            continue
        hist = attributes.get_history(obj, key)
        if created:
            after = getattr(obj, key)
            if after is None:
                continue
            before = None
        elif hist.has_changes():
            before = hist.deleted[0] if hist.deleted else None
            after = hist.added[0] if hist.added else None
            if before == after:
                continue
        else:
            continue
        if key in masked:
            before, after = (MASK if before is not None else None), MASK
        changes[key] = [_plain(before), _plain(after)]
    return changes


@event.listens_for(Session, "before_flush")
def _note_versions(session, flush_context, instances) -> None:
    """A status that is its row's version column (`status_is_version`) is committed by the
    flush itself (SQLAlchemy >= 2.0.25), so after the flush it shows no change: note it now."""
    noted = session.info.setdefault(_VERSIONS, {})
    for obj in session.dirty:
        mapper = inspect(obj).mapper
        if not _audited(obj) or mapper.version_id_col is None:
            continue
        key = mapper.get_property_by_column(mapper.version_id_col).key
        hist = attributes.get_history(obj, key)
        if hist.deleted and hist.added and hist.deleted[0] != hist.added[0]:
            noted.setdefault((_resource(obj), obj.id), {})[key] = [
                _plain(hist.deleted[0]), _plain(hist.added[0])]


@event.listens_for(Session, "after_flush")
def _collect(session, flush_context) -> None:
    versions = session.info.pop(_VERSIONS, {})
    if session.info.get(SKIP_ROWS):
        return
    pending = session.info.setdefault(_PENDING, {})
    for obj in session.new:
        if _audited(obj):
            pending[(_resource(obj), obj.id)] = ["create", _diff(obj, created=True)]
    for obj in session.dirty:
        moved = versions.get((_resource(obj), obj.id), {}) if _audited(obj) else {}
        if not _audited(obj) or not (moved or session.is_modified(obj, include_collections=False)):
            continue
        changes = {**moved, **_diff(obj, created=False)}
        if not changes:
            continue
        key = (_resource(obj), obj.id)
        action = "update"
        if "deleted_on" in changes:
            action = "delete" if changes["deleted_on"][1] else "restore"
        if key in pending:
            entry = pending[key]
            for field, (before, after) in changes.items():
                first = entry[1].get(field, [before, after])[0]
                entry[1][field] = [first, after]
            if entry[0] != "create":
                entry[0] = action if action != "update" else entry[0]
        else:
            pending[key] = [action, changes]
    for obj in session.deleted:
        if _audited(obj):
            pending[(_resource(obj), obj.id)] = ["delete", {}]


@event.listens_for(Session, "before_commit")
def _write(session) -> None:
    # The commit flushes only after this hook: changes not flushed yet (a soft delete committed
    # straight away) would otherwise be collected too late and never written.
    session.flush()
    pending = session.info.pop(_PENDING, None)
    operation = session.info.pop(_OPERATION, None)
    if not pending:
        return
    for (resource, record_id), (action, changes) in pending.items():
        if operation and action == "update":
            action = operation[0]
            changes = {"_operation": operation[1], **changes}
        session.add(_entry(action, resource, record_id, changes))


@event.listens_for(Session, "after_rollback")
def _forget(session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_OPERATION, None)
    session.info.pop(_VERSIONS, None)


@event.listens_for(Session, "before_flush")
def _stamp(session, flush_context, instances) -> None:
    """Who created and who last changed each row."""
    user_id = current_principal().user_id
    for obj in session.new:
        if isinstance(obj, Entity):
            obj.created_by_id = obj.created_by_id or user_id
            obj.changed_by_id = user_id
    for obj in session.dirty:
        if isinstance(obj, Entity) and session.is_modified(obj, include_collections=False):
            obj.changed_by_id = user_id
            obj.changed_on = clock.utcnow()


def mark_operation(session, action: str, name: str) -> None:
    """Record this transaction's updates as one logical operation (e.g. a transition named
    `name`) instead of plain updates."""
    session.info[_OPERATION] = (action, name)


def _entry(action, resource, record_id, changes) -> AuditLog:
    principal = current_principal()
    # The acting principal's name first: after a streamed download the request's user object
    # is detached from the (closed) session.
    username = principal.extra.get("username") if principal.user_id is not None else None
    ip = None
    if has_request_context():
        from flask_login import current_user

        username = username or getattr(current_user, "username", None)
        ip = request.remote_addr
    return AuditLog(
        user_id=principal.user_id,
        username=username or ("system" if principal.system else None),
        action=action,
        resource=resource,
        record_id=None if record_id is None else str(record_id),
        changes=json.dumps(changes, ensure_ascii=False, default=str) if changes else None,
        ip=ip,
    )


def record(session, action: str, resource: str | None = None, record_id=None,
           changes: dict | None = None, user_id: int | None = None,
           username: str | None = None) -> AuditLog:
    """Add a record of an operation that is not a row change (login, export, import).
    The caller commits."""
    entry = _entry(action, resource, record_id, changes)
    if user_id is not None:
        entry.user_id = user_id
    if username is not None:
        entry.username = username
    session.add(entry)
    return entry
