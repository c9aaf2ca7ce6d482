"""Audit events. Append-only; never holds personal data itself, only what happened."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.core.db import UTCDateTime, utcnow
from app.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_referral_id_at", "referral_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Null for events caused by the system (timers, workers).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: Null for events that concern no referral (login, admin changes).
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    #: What happened, a stable code such as ``referral.started`` or ``referral.viewed``.
    action: Mapped[str] = mapped_column(String(64), index=True)
    #: The pathway step (task spec name) concerned, if any.
    step: Mapped[str | None] = mapped_column(String(200))
    #: Non-personal details (ids, field names, step titles) — never answers.
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Client address for logins and views of personal data.
    address: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User | None] = relationship()
