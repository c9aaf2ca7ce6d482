"""The outbox worker: claim due messages, send each once, record what happened.

1. Claim due rows in a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a
   ``BEGIN IMMEDIATE`` write lock on SQLite): status ``sending``, ``claimed_by`` and a new
   ``fence`` token. Commit.
2. Send each outside any transaction.
3. Record the result with a fenced update (``WHERE id = ? AND claimed_by = ? AND fence = ?``),
   so a worker that lost its claim cannot overwrite the newer state.

A claim whose lease expired (the worker died mid-send) may or may not have been sent: it is
marked ``unknown`` for reconciliation, never resent. Logs name the outbox id and status only.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from app.core.db import utcnow
from app.extensions import db
from app.sms.gateways import PermanentError, TransientError, UnknownOutcome
from app.sms.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0


@dataclass(frozen=True)
class _Claim:
    id: int
    recipient: str
    body: str
    attempts: int
    fence: int
    target_id: int | None


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter after ``attempts`` failed attempts (capped at an hour)."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=delay * random.uniform(0.5, 1.0))


def drain_once(gateway, worker_id: str, batch: int = 50, now: datetime | None = None) -> DrainResult:
    """Send what is due now (at most ``batch`` messages) through ``gateway``; see the module doc."""
    now = now or utcnow()
    result = DrainResult()
    escalate: list[tuple[int, int | None, str, str]] = []
    result.unknown += _expire_leases(now, escalate)
    for claim in _claim(worker_id, batch, now):
        outcome = _send(gateway, claim)
        status = _record(claim, worker_id, outcome, now)
        if status is None:
            log.warning("sms outbox %s: claim lost before its result was recorded", claim.id)
            continue
        log.info("sms outbox %s: %s", claim.id, status.value)
        if status in (OutboxStatus.sent, OutboxStatus.delivered):
            result.sent += 1
        elif status == OutboxStatus.queued:
            result.retried += 1
        elif status == OutboxStatus.failed:
            result.failed += 1
            escalate.append((claim.id, claim.target_id, "sms.failed", _code(outcome)))
        else:
            result.unknown += 1
            escalate.append((claim.id, claim.target_id, "sms.unknown", _code(outcome)))
    _escalate(escalate)
    return result


def _expire_leases(now: datetime, escalate: list) -> int:
    cutoff = now - timedelta(seconds=current_app.config.get("SMS_LEASE_SECONDS", 300))
    with db.engine.begin() as conn:
        rows = conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.sending, OutboxMessage.claimed_at < cutoff)
            .values(status=OutboxStatus.unknown, error_code="lease_expired",
                    error="the worker's claim expired during sending; maybe sent", updated_at=now)
            .returning(OutboxMessage.id, OutboxMessage.target_id)
        ).all()
    for row in rows:
        log.warning("sms outbox %s: unknown (lease expired)", row.id)
        escalate.append((row.id, row.target_id, "sms.unknown", "lease_expired"))
    return len(rows)


def _claim(worker_id: str, batch: int, now: datetime) -> list[_Claim]:
    due = (select(OutboxMessage.id)
           .where(OutboxMessage.status == OutboxStatus.queued, OutboxMessage.next_attempt_at <= now)
           .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(batch))
    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock first: no two workers read the same rows
        else:
            due = due.with_for_update(skip_locked=True)
        ids = list(conn.scalars(due))
        rows = []
        if ids:
            rows = conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.queued)
                .values(status=OutboxStatus.sending, claimed_by=worker_id, claimed_at=now,
                        fence=OutboxMessage.fence + 1, updated_at=now)
                .returning(OutboxMessage.id, OutboxMessage.recipient, OutboxMessage.body,
                           OutboxMessage.attempts, OutboxMessage.fence, OutboxMessage.target_id)
            ).all()
        conn.commit()
    return sorted((_Claim(*row) for row in rows), key=lambda c: c.id)


def _send(gateway, claim: _Claim):
    try:
        return gateway.send(claim.recipient, claim.body, claim.id)
    except (TransientError, PermanentError, UnknownOutcome) as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - anything unexpected: it may have gone out
        log.exception("sms outbox %s: unexpected gateway error", claim.id)
        return UnknownOutcome(type(exc).__name__, code="gateway_exception")


def _record(claim: _Claim, worker_id: str, outcome, now: datetime) -> OutboxStatus | None:
    attempts = claim.attempts + 1
    values: dict = {"attempts": attempts, "updated_at": utcnow()}
    if isinstance(outcome, TransientError):
        if attempts >= current_app.config.get("SMS_MAX_ATTEMPTS", 8):
            values.update(status=OutboxStatus.failed, error_code=outcome.code or "max_attempts",
                          error=_text(outcome) or "gave up after repeated temporary errors")
        else:
            values.update(status=OutboxStatus.queued, next_attempt_at=now + backoff(attempts),
                          error_code=outcome.code or "transient", error=_text(outcome))
    elif isinstance(outcome, PermanentError):
        values.update(status=OutboxStatus.failed, error_code=outcome.code or "permanent", error=_text(outcome))
    elif isinstance(outcome, UnknownOutcome):
        values.update(status=OutboxStatus.unknown, error_code=outcome.code or "unknown", error=_text(outcome))
    else:
        status = OutboxStatus.delivered if outcome.status == "delivered" else OutboxStatus.sent
        values.update(status=status, provider_id=outcome.provider_id, error_code=None, error=None)
    with db.engine.begin() as conn:
        changed = conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == claim.id, OutboxMessage.status == OutboxStatus.sending,
                   OutboxMessage.claimed_by == worker_id, OutboxMessage.fence == claim.fence)
            .values(**values)
        ).rowcount
    return values["status"] if changed == 1 else None


def _text(exc: Exception) -> str | None:
    return str(exc)[:500] or None


def _code(outcome) -> str:
    return getattr(outcome, "code", None) or type(outcome).__name__


def _escalate(events: list[tuple[int, int | None, str, str]]) -> None:
    """Record an audit event on the referral for each message that will not arrive (or may not)."""
    if not events:
        return
    from app.audit.services import record_event
    from app.referrals.models import ReferralTarget

    for outbox_id, target_id, action, code in events:
        target = db.session.get(ReferralTarget, target_id) if target_id else None
        record_event(action, referral=target.referral if target else None,
                     detail={"outbox": outbox_id, "target": target.code if target else None, "error": code})
    db.session.commit()
