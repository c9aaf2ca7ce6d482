"""The SMS outbox: one row per message, which is also the record of what was sent."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import UTCDateTime, utcnow
from app.extensions import db


class OutboxStatus(enum.Enum):
    queued = "queued"  # waiting for its next attempt
    sending = "sending"  # claimed by a worker (claimed_by, fence) and being handed to the gateway
    sent = "sent"  # the gateway took it (provider_id set)
    delivered = "delivered"  # the provider reported delivery (status callbacks)
    failed = "failed"  # permanently: never retried
    unknown = "unknown"  # maybe sent: left for reconciliation, never resent blindly


class OutboxMessage(db.Model):
    """A text message to send (or sent). The body never leaves this row: not in logs, not in errors."""

    __tablename__ = "sms_outbox"
    __table_args__ = (Index("ix_sms_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What the message is for, unique: queueing it twice gives the same row (``target:<id>:new``).
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    #: E.164 phone number.
    recipient: Mapped[str] = mapped_column(String(16), index=True)
    locale: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(OutboxStatus, name="sms_outbox_status", native_enum=False, length=20), default=OutboxStatus.queued)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The worker holding the claim, when it claimed, and the claim's fence token: a result is
    #: recorded only by the worker holding the current claim (``WHERE claimed_by = ? AND fence = ?``).
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fence: Mapped[int] = mapped_column(Integer, default=0)
    #: The gateway's id of the message (Twilio's SID, ``console-<id>``).
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Last error: the gateway's code and text (never the body or the number).
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("referral_targets.id", ondelete="SET NULL"),
                                                  index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    target = relationship("ReferralTarget")

    def __repr__(self) -> str:  # no body, no number
        return f"<OutboxMessage {self.id} {self.status.value}>"
