"""Shared file storage: uploads (agreement scans, meeting attachments, photos), generated exports
and import reports, behind one interface — never a host's local disk, so that a file stored
through one host is read through any other.

    stored = storage.save(chunks, name, content_type, expires_on=None)   # in the caller's transaction
    for piece in storage.read(stored): ...                                # streamed
    storage.delete(stored)

Two backends, chosen by `GONGJIAN_STORAGE_URL`:
- unset or `db`: the database, a file's bytes as rows of CHUNK bytes (`file_chunk`). Shared by
  every host, in every `pg_dump`, and written in the caller's transaction: a file saved with
  its record is there exactly when the record is (a failed import keeps neither).
- `s3://BUCKET?endpoint_url=http://…&region=…` (credentials from boto3's usual environment
  variables): one object per file, named by its row's id. The row is written in the caller's
  transaction; the object is uploaded first, so a row never names a missing object. An
  unreachable bucket refuses the save with `StorageUnavailable` (a Chinese message).

Files stream in CHUNK-sized pieces in both directions: never whole in memory.
"""
from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlparse

from flask import current_app
from sqlalchemy import delete, insert, select

from app.clock import utcnow
from app.errors import DomainError
from app.extensions import db
from app.models.jobs import FileChunk, StoredFile

CHUNK = 256 * 1024


class StorageUnavailable(DomainError):
    """The bucket (or the database) did not take the file."""


def pieces(stream, size: int = CHUNK):
    """A file-like object's bytes, `size` at a time."""
    while piece := stream.read(size):
        yield piece


def _rechunked(chunks):
    """Any iterable of bytes as pieces of exactly CHUNK bytes (the last one shorter)."""
    buffer = bytearray()
    for piece in chunks:
        buffer += piece
        while len(buffer) >= CHUNK:
            yield bytes(buffer[:CHUNK])
            del buffer[:CHUNK]
    if buffer:
        yield bytes(buffer)


class DatabaseBackend:
    name = "db"

    def write(self, session, stored: StoredFile, chunks) -> int:
        size = 0
        for seq, piece in enumerate(_rechunked(chunks)):
            # Core inserts: the chunks never sit in the session's identity map.
            session.execute(insert(FileChunk.__table__), {"file_id": stored.id, "seq": seq,
                                                          "data": piece})
            size += len(piece)
        return size

    def read(self, session, stored: StoredFile):
        # One chunk per short read on a connection of its own: a streamed download outlives its
        # request's session and holds no cursor or transaction between its pieces.
        engine, file_id, table = session.get_bind(), stored.id, FileChunk.__table__

        def pieces_():
            seq = 0
            while True:
                with engine.connect() as connection:
                    piece = connection.execute(select(table.c.data).where(
                        table.c.file_id == file_id, table.c.seq == seq)).scalar()
                if piece is None:
                    return
                yield bytes(piece)
                seq += 1
        return pieces_()

    def remove(self, session, stored: StoredFile) -> None:
        session.execute(delete(FileChunk.__table__).where(FileChunk.file_id == stored.id))


class S3Backend:
    name = "s3"

    def __init__(self, url: str):
        import boto3
        from botocore.config import Config

        parsed = urlparse(url)
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = boto3.client(
            "s3", endpoint_url=options.get("endpoint_url"), region_name=options.get("region"),
            config=Config(connect_timeout=3, read_timeout=30, retries={"max_attempts": 2}))

    def key(self, stored: StoredFile) -> str:
        return f"{self.prefix}/{stored.id}" if self.prefix else str(stored.id)

    def write(self, session, stored: StoredFile, chunks) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        reader = _ChunkReader(_rechunked(chunks))
        try:
            # upload_fileobj sends a large file in parts, reading CHUNK-sized pieces.
            self.client.upload_fileobj(reader, self.bucket, self.key(stored))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"文件存储不可用，文件未保存（{type(exc).__name__}）") from exc
        return reader.size

    def read(self, session, stored: StoredFile):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(stored))["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"文件存储不可用，暂时无法读取文件（{type(exc).__name__}）") from exc
        return body.iter_chunks(CHUNK)

    def remove(self, session, stored: StoredFile) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(stored))


class _ChunkReader:
    """An iterable of bytes as the file-like object boto3 reads from."""

    def __init__(self, chunks):
        self.chunks, self.buffer, self.size = iter(chunks), b"", 0

    def read(self, size=-1):
        while size < 0 or len(self.buffer) < size:
            piece = next(self.chunks, None)
            if piece is None:
                break
            self.buffer += piece
        if size < 0:
            out, self.buffer = self.buffer, b""
        else:
            out, self.buffer = self.buffer[:size], self.buffer[size:]
        self.size += len(out)
        return out


_BACKENDS: dict[str, object] = {}


def backend(name: str | None = None):
    """The backend of `name` ("db", "s3"), or the configured one for new files."""
    url = current_app.config.get("STORAGE_URL") or "db"
    if name is None:
        name = "s3" if url.startswith("s3://") else "db"
    if name == "db":
        return _BACKENDS.setdefault("db", DatabaseBackend())
    if name not in _BACKENDS or _BACKENDS[name].url != url:
        instance = S3Backend(url)
        instance.url = url
        _BACKENDS[name] = instance
    return _BACKENDS[name]


def save(chunks, name: str, content_type: str, expires_on: datetime | None = None,
         session=None) -> StoredFile:
    """Store a file's bytes (an iterable of bytes) in the caller's transaction; the caller
    commits (a file whose record is not saved is not kept: in the bucket it is an orphan the
    purge removes)."""
    session = session or db.session
    chosen = backend()
    stored = StoredFile(name=name[:255], content_type=content_type, size=0, backend=chosen.name,
                        created_on=utcnow(), expires_on=expires_on)
    session.add(stored)
    session.flush()  # its id names the chunks or the object
    stored.size = chosen.write(session, stored, chunks)
    return stored


def read(stored: StoredFile, session=None):
    """The file's bytes, a chunk at a time."""
    return backend(stored.backend).read(session or db.session, stored)


def get(file_id: int, session=None) -> StoredFile | None:
    return (session or db.session).get(StoredFile, file_id)


def response(stored: StoredFile, download_name: str | None = None):
    """A download of the file, streamed from its backend."""
    from urllib.parse import quote

    from flask import Response

    name = download_name or stored.name
    return Response(read(stored), content_type=stored.content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        "Content-Length": str(stored.size)})


def delete_id(file_id: int, session=None) -> None:
    stored = get(file_id, session)
    if stored is not None:
        delete_file(stored, session)


def delete_file(stored: StoredFile, session=None) -> None:
    session = session or db.session
    backend(stored.backend).remove(session, stored)
    session.delete(stored)


def purge_expired(session, now: datetime) -> int:
    """Delete generated files past their expiry (jobs' results, import reports); safe twice."""
    expired = session.execute(select(StoredFile).where(StoredFile.expires_on < now)).scalars().all()
    for stored in expired:
        delete_file(stored, session)
    return len(expired)

