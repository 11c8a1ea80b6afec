"""Who saw personal data in full (DOMAIN.md §6).

Whether a role sees 身份证号 and phone in full is one permission, `can_reveal` on member, granted
per role in roles.py and asked through `scope.sees_personal_data(row)` — which also notes each
row it lets through in full. When the request ends those notes become one audit record of kind
`reveal` per resource: the record's id for a show page or an API read, the count and the ids for
an export. A streamed export ends after its view has returned: the record is written when the
request context is torn down, after the last row has gone out.
"""
from __future__ import annotations

import logging

from flask import g, request

from app.security.scope import REVEALED

log = logging.getLogger(__name__)
MAX_IDS = 1000  # ids listed in one record; the count is always exact


def _record_reveals(exc) -> None:
    revealed = g.pop(REVEALED, None)
    if not revealed or exc is not None:
        return
    from app.extensions import db
    from app.services import audit

    try:
        for resource, ids in sorted(revealed.items()):
            ids = sorted(ids)
            audit.record(db.session, "reveal", resource,
                         record_id=ids[0] if len(ids) == 1 else None,
                         changes={"rows": len(ids), "ids": ids[:MAX_IDS], "path": request.path})
        db.session.commit()
    except Exception:  # noqa: BLE001 — the page is out already; tell the log, not the user
        db.session.rollback()
        log.exception("未能记录敏感信息查看（%s）", request.path)


def install(app) -> None:
    app.teardown_request(_record_reveals)
