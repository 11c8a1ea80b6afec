"""Notices (issue 23): the outbox and the in-panel message centre are one table.

A row is one notice of one event to one recipient on one channel, written in the transaction of
the move that causes it (app/services/notices.py): a move rolled back leaves no row. The key
(event, recipient, channel) is unique, so an event written twice (a scheduled scan run again)
is one notice, and a delivery retried after a worker died carries the same key to the receiver.

The in-panel row is the message itself (delivered when written, read when its recipient opens
it); e-mail and webhook rows wait for the delivery job: pending → sending → sent, or back to
pending with a later try (backoff), or failed after the last try, or dropped (the recipient was
deactivated meanwhile).
"""
from __future__ import annotations

from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)


class Channel(StrEnum):
    PANEL = "panel"
    EMAIL = "email"
    WEBHOOK = "webhook"


class NoticeStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"


class Notice(Model):
    __tablename__ = "notice"
    __table_args__ = (
        UniqueConstraint("event_key", "recipient_id", "channel", name="uq_notice_key"),
        # The bell and the list: a user's panel messages, unread first by id.
        Index("ix_notice_inbox", "recipient_id", "channel", "read_on", "id"),
        # The delivery job's pick: what is due.
        Index("ix_notice_due", "status", "next_try_on"),
    )

    id = Column(Integer, primary_key=True)
    # The event's identity: its code, its row and what makes this occurrence distinct (a
    # move's id, a deadline, a month) — e.g. need_dispatched:need:12:5f3a….
    event_key = Column(String(160), nullable=False)
    event = Column(String(40), nullable=False)  # the code in notices.EVENTS (the template)
    recipient_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False)
    channel = Column(String(10), nullable=False)
    resource = Column(String(40))  # the row the notice is about (its link), if any
    record_id = Column(Integer)
    payload = Column(Text, nullable=False, default="{}")  # JSON: the template's values
    status = Column(String(10), nullable=False, default=NoticeStatus.PENDING)
    attempts = Column(Integer, nullable=False, default=0)
    next_try_on = Column(DateTime, nullable=True)
    claim = Column(String(32), nullable=True)  # the delivery run that took it
    claimed_on = Column(DateTime, nullable=True)
    error = Column(String(500), nullable=True)
    created_on = Column(DateTime, nullable=False)
    sent_on = Column(DateTime, nullable=True)
    read_on = Column(DateTime, nullable=True)


# The channels a user chose besides the panel (their user info): columns on ab_user.
CHANNEL_COLUMNS = {Channel.EMAIL: "notify_email", Channel.WEBHOOK: "notify_webhook"}
