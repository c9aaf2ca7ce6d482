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
    suppressed = "suppressed"  # never attempted: the recipient opted out (STOP)


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
    #: What it is: referral (a new referral), reminder, reply (to an inbound SMS), notification
    #: (to a user). Undeliverable referrals and reminders fall back to the web (app.referrals.follow_up).
    kind: Mapped[str] = mapped_column(String(20), default="message")
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


class InboundResult(enum.Enum):
    applied = "applied"  # the answer was recorded on the target
    already_answered = "already_answered"  # the target had an answer already
    unknown_code = "unknown_code"  # no target with that code
    wrong_number = "wrong_number"  # the sender is not the target's service's SMS phone
    late = "late"  # the target is no longer waiting for an answer (no response, cancelled)
    not_understood = "not_understood"  # neither ACCEPT nor DECLINE with a code
    opted_out = "opted_out"  # a STOP-family word (Twilio itself blocks further messages)
    duplicate = "duplicate"  # the same MessageSid again (not stored: the first row is kept)


class InboundMessage(db.Model):
    """A text message received on the webhook, once per Twilio ``MessageSid``: the unique
    constraint is the deduplication (a redelivered webhook finds the row and changes nothing)."""

    __tablename__ = "sms_inbound"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    #: E.164 phone numbers, as Twilio sent them.
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    result: Mapped[InboundResult | None] = mapped_column(
        Enum(InboundResult, name="sms_inbound_result", native_enum=False, length=20))
    target_id: Mapped[int | None] = mapped_column(ForeignKey("referral_targets.id", ondelete="SET NULL"),
                                                  index=True)

    def __repr__(self) -> str:  # no body, no number
        return f"<InboundMessage {self.id} {self.result.value if self.result else None}>"


class OptOut(db.Model):
    """A phone number that replied STOP (or that Twilio reports as unsubscribed): nothing is sent
    to it until it replies START."""

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: stop (an SMS reply) | carrier (Twilio error 21610)
    source: Mapped[str] = mapped_column(String(20), default="stop")
