"""Who saw personal data in full (DOMAIN.md §6).

Whether a role sees 身份证号 and phone in full is one permission, `can_reveal` on member, granted
per role in roles.py and asked through `principal.sees_personal_data(row)` — which also notes each
row it lets through in full. When the request ends those notes become one audit record of kind
`reveal` per resource: the record's id for a show page or an API read, the count and the ids for
an export.

An export records its reveal with its own export record, before its first byte: an Excel file
is made before then (its notes are written there, `record_noted`); a streamed CSV is not, so
the rows it will show in full are counted from its query (`record_export`) — a record written
after the last row would wait on the read the stream holds open, and be lost with it. A write
that meets SQLite's "database is locked" (another writer longer than the busy timeout) is
tried again, a few times, before the log is told: a reveal must not go unrecorded.
"""
from __future__ import annotations

import logging

from flask import g, has_request_context, request

from app.security import busy
from app.security.scope import REVEALED, current_principal, owner_clause

log = logging.getLogger(__name__)
MAX_IDS = 1000  # ids listed in one record; the count is always exact
# Resources whose reveal this request has written, kept on the request: a streamed response
# runs its generator, and ends the request, in an application context (a `g`) of its own.
RECORDED = "gongjian.reveals_recorded"


def _recorded() -> set:
    return request.environ.setdefault(RECORDED, set()) if has_request_context() else set()


def _add_records(session, revealed: dict) -> None:
    from app.services import audit

    path = request.path if has_request_context() else None
    for resource, ids in sorted(revealed.items()):
        ids = sorted(ids)
        audit.record(session, "reveal", resource,
                     record_id=ids[0] if len(ids) == 1 else None,
                     changes={"rows": len(ids), "ids": ids[:MAX_IDS], "path": path})


def record_noted(session) -> None:
    """Add the reveals noted so far in this request to `session` (the caller commits), so
    that the request's end does not write them again. The notes are read, not taken: a write
    retried after a lock (busy.write_retrying) calls this again and must find them."""
    revealed = g.get(REVEALED)
    if revealed:
        _add_records(session, revealed)
        _recorded().update(revealed)


def record_export(session, export) -> None:
    """Add the reveal of a CSV export before it streams: the rows of its query that the user
    owns (only those show personal data in full), if a column it writes reveals any."""
    from app.services import audit

    model = export.view.datamodel.obj
    if not set(export.columns) & set(getattr(model, "__revealing__", ())):
        return
    principal = current_principal()
    if principal.system or not principal.reveals_personal_data:
        return
    ids = export.query.order_by(None).with_entities(model.id)
    if not principal.sees_all:
        ids = ids.filter(owner_clause(model, principal))
    count = ids.count()
    if count:
        first = [pk for (pk,) in ids.order_by(model.id).limit(MAX_IDS)]
        audit.record(session, "reveal", model.__tablename__,
                     record_id=first[0] if count == 1 else None,
                     changes={"rows": count, "ids": first, "path": request.path})
    _recorded().add(model.__tablename__)


def _record_reveals(exc) -> None:
    revealed = g.pop(REVEALED, None)
    recorded = _recorded()
    revealed = {k: v for k, v in (revealed or {}).items() if k not in recorded}
    if not revealed or exc is not None:
        return
    from app.extensions import db

    try:
        busy.write_retrying(db.session, lambda session: _add_records(session, revealed))
    except Exception:  # the page is out already: tell the log, not the user
        db.session.rollback()
        log.exception("未能记录敏感信息查看（%s）", request.path)


def install(app) -> None:
    app.teardown_request(_record_reveals)
