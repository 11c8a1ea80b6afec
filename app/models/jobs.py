"""Long work as jobs (app/jobs.py) and the files they and the uploads keep (app/storage.py).

A job belongs to the user who started it: it runs with that user's scope and rights as they are
when it runs, and only that user sees its page and downloads its file. A stored file is a row
here whatever the backend: its bytes are chunk rows in this database (the default, in every
`pg_dump`) or one object in an S3-compatible bucket, named by the row's id.
"""
from __future__ import annotations

from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import relationship


class JobStatus(StrEnum):
    QUEUED = "排队中"
    RUNNING = "运行中"
    DONE = "已完成"
    FAILED = "失败"
    CANCELLED = "已取消"


FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(Model):
    __tablename__ = "job"

    id = Column(Integer, primary_key=True)
    kind = Column(String(32), nullable=False)           # export, import, purge, …
    resource = Column(String(64))                       # the entity, for exports and imports
    title = Column(String(200), nullable=False)         # what the user reads: 导出需求清单（CSV）
    params = Column(Text, nullable=False, default="{}")  # JSON: the request's arguments
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), index=True)
    # The form's (or export link's) one-time token: a double-click submits it twice, and the
    # second submission finds the first one's job.
    form_token = Column(String(64), unique=True)
    status = Column(String(16), nullable=False, default=JobStatus.QUEUED)
    total = Column(Integer)
    done = Column(Integer, nullable=False, default=0)
    message = Column(Text)
    attempts = Column(Integer, nullable=False, default=0)
    file_id = Column(Integer, ForeignKey("stored_file.id", ondelete="SET NULL"))
    created_on = Column(DateTime, nullable=False, index=True)
    started_on = Column(DateTime)
    # Written with the progress: a job whose worker stopped beating is taken over by the next
    # delivery of its message; one still beating is left to finish (app/jobs.py).
    heartbeat_on = Column(DateTime)
    finished_on = Column(DateTime)
    # The result's link answers 410 after this (and the file is purged).
    expires_on = Column(DateTime)

    file = relationship("StoredFile")


class StoredFile(Model):
    __tablename__ = "stored_file"

    id = Column(Integer, primary_key=True)
    name = Column(String(255), nullable=False)           # the name it is downloaded under
    content_type = Column(String(127), nullable=False)
    size = Column(BigInteger, nullable=False, default=0)
    backend = Column(String(8), nullable=False)          # "db" or "s3": where its bytes are
    created_on = Column(DateTime, nullable=False)
    # Generated files expire (exports, reports); uploads live as long as their record.
    expires_on = Column(DateTime, index=True)


class FileChunk(Model):
    """A piece of a file kept in the database, so that a file streams in and out a chunk at a
    time (never whole in memory)."""

    __tablename__ = "file_chunk"

    file_id = Column(Integer, ForeignKey("stored_file.id", ondelete="CASCADE"), primary_key=True)
    seq = Column(Integer, primary_key=True, autoincrement=False)
    # MySQL's BLOB holds 64 KiB: a chunk needs MEDIUMBLOB (16 MiB).
    data = Column(LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb"),
                  nullable=False)
