"""Files that uploads left on a host's disk (UPLOAD_FOLDER) before the shared storage
(app/storage.py, issue 21): moved into it by `flask gongjian init`."""
from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy import select

from app import storage
from app.models.cobuild import Agreement
from app.models.meetings import MeetingAttachment
from app.security.scope import unscoped
from app.services.cobuild import FILE_MIMETYPES
from app.services.meetings import upload_folder


def move_local_uploads(session) -> int:
    """Move the files that uploads left under UPLOAD_FOLDER before the shared storage (the
    agreements' scans, the meetings' attachments) into it, each with its record in one commit,
    then delete the local file; how many moved. Safe to run again (`flask gongjian init`)."""
    root = Path(current_app.config["UPLOAD_FOLDER"])
    moved = 0
    with unscoped():
        agreements = session.execute(select(Agreement).execution_options(include_deleted=True)
                                     .where(Agreement.file_path.is_not(None),
                                            Agreement.file_id.is_(None))).scalars().all()
        attachments = session.execute(select(MeetingAttachment)
                                      .execution_options(include_deleted=True)
                                      .where(MeetingAttachment.file_id.is_(None))).scalars().all()
        for record, path, name, content_type, clear in (
                [(a, root / a.file_path, a.file_name or Path(a.file_path).name,
                  FILE_MIMETYPES.get(a.file_type, "application/octet-stream"), "file_path")
                 for a in agreements] +
                [(m, Path(upload_folder()) / m.stored_name, m.filename, m.content_type, None)
                 for m in attachments]):
            if not path.is_file():
                continue
            with path.open("rb") as handle:
                stored = storage.save(storage.pieces(handle), name, content_type, session=session)
            record.file_id = stored.id
            if clear:
                setattr(record, clear, None)
            session.commit()
            path.unlink()
            moved += 1
    return moved
