"""The outbox worker: claim due messages, send each once, record what happened.

Each ``drain_once``:

1. Expires leases: a claim older than SMS_LEASE_SECONDS (its worker died mid-send) may or may
   not have been sent: it becomes ``unknown``, never resent blindly.
2. Reconciles ``unknown`` messages (``app.sms.reconcile``): asks the gateway whether it took
   each one; found: sent; not there: queued again; cannot tell: asked again next tick.
3. Claims due rows in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a
   ``BEGIN IMMEDIATE`` write lock on SQLite). A row whose recipient opted out (``OptOut``)
   becomes ``suppressed`` there and then, never attempted; the others ``sending``, with
   ``claimed_by`` and a new ``fence`` token. Commit.
4. Sends each outside any transaction.
5. Records the result with a fenced update (``WHERE id = ? AND claimed_by = ? AND fence = ?``),
   so a worker that lost its claim cannot overwrite the newer state. Twilio's 21610 (the
   recipient unsubscribed) records an opt-out in the same transaction.
6. Escalates: an audit event on the referral for each message that will not arrive (failed,
   suppressed) or may not have (unknown, unreconciled); then, for a referral or reminder that
   failed or was suppressed, ``message_undeliverable`` (``app.sms.signals``).

Every update is conditional on the status it expects (and the fence), so several workers can
run at once. Logs name the outbox id and status only.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, select, update

from app.core.db import utcnow
from app.extensions import db
from app.sms.gateways import PermanentError, TransientError, UnknownOutcome
from app.sms.inbound import opt_out_statement
from app.sms.models import OptOut, OutboxMessage, OutboxStatus
from app.sms.outbox import Escalation, escalate, write_transaction
from app.sms.reconcile import reconcile_round

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
#: Twilio: "Attempt to send to unsubscribed recipient".
UNSUBSCRIBED_CODE = "21610"


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    suppressed: int = 0
    #: Unknown messages the provider turned out to have (sent), and ones it did not (queued again).
    reconciled: int = 0
    requeued: int = 0
    #: Rows this drain took from the queue (sent, suppressed, ...): fewer than the batch means
    #: nothing more is due.
    claimed: int = 0


@dataclass(frozen=True)
class _Claim:
    id: int
    recipient: str
    body: str
    attempts: int
    fence: int
    target_id: int | None
    kind: str | None


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter after ``attempts`` failed attempts (capped at an hour)."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=delay * random.uniform(0.5, 1.0))


def drain_once(gateway, worker_id: str, batch: int = 50, now: datetime | None = None) -> DrainResult:
    """Send what is due now (at most ``batch`` messages) through ``gateway``; see the module doc."""
    now = now or utcnow()
    result = DrainResult()
    escalations: list[Escalation] = []
    result.unknown += _expire_leases(now, escalations)
    reconcile_round(gateway, now, batch, result, escalations)
    claims, suppressed = _claim(worker_id, batch, now)
    result.claimed, result.suppressed = len(claims) + len(suppressed), len(suppressed)
    escalations.extend(suppressed)
    for claim in claims:
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
            escalations.append(Escalation(claim.id, claim.target_id, claim.kind, "sms.failed", _code(outcome)))
        else:
            result.unknown += 1
            escalations.append(Escalation(claim.id, claim.target_id, claim.kind, "sms.unknown", _code(outcome)))
    escalate(escalations)
    return result


def _expire_leases(now: datetime, escalate: list) -> int:
    cutoff = now - timedelta(seconds=current_app.config.get("SMS_LEASE_SECONDS", 300))
    with db.engine.begin() as conn:
        rows = conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.sending, OutboxMessage.claimed_at < cutoff)
            .values(status=OutboxStatus.unknown, error_code="lease_expired",
                    error="the worker's claim expired during sending; maybe sent", updated_at=now)
            .returning(OutboxMessage.id, OutboxMessage.target_id, OutboxMessage.kind)
        ).all()
    for row in rows:
        log.warning("sms outbox %s: unknown (lease expired)", row.id)
        escalate.append(Escalation(row.id, row.target_id, row.kind, "sms.unknown", "lease_expired"))
    return len(rows)


# -- claiming, sending, recording ------------------------------------------------------------


def _claim(worker_id: str, batch: int, now: datetime) -> tuple[list[_Claim], list[Escalation]]:
    """Take up to ``batch`` due rows: the opted-out ones become ``suppressed``, the others
    ``sending`` under this worker's claim — in one transaction."""
    opted_out = exists().where(OptOut.phone == OutboxMessage.recipient)
    due = (select(OutboxMessage.id, opted_out.label("opted_out"))
           .where(OutboxMessage.status == OutboxStatus.queued, OutboxMessage.next_attempt_at <= now)
           .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(batch))
    with write_transaction() as conn:
        if conn.dialect.name != "sqlite":
            due = due.with_for_update(skip_locked=True, of=OutboxMessage)
        rows = conn.execute(due).all()
        suppressed = _suppress(conn, [r.id for r in rows if r.opted_out], now)
        ids = [r.id for r in rows if not r.opted_out]
        claimed = []
        if ids:
            claimed = conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.queued)
                .values(status=OutboxStatus.sending, claimed_by=worker_id, claimed_at=now,
                        fence=OutboxMessage.fence + 1, updated_at=now)
                .returning(OutboxMessage.id, OutboxMessage.recipient, OutboxMessage.body,
                           OutboxMessage.attempts, OutboxMessage.fence, OutboxMessage.target_id,
                           OutboxMessage.kind)
            ).all()
    return sorted((_Claim(*row) for row in claimed), key=lambda c: c.id), suppressed


def _suppress(conn, ids: list[int], now: datetime) -> list[Escalation]:
    if not ids:
        return []
    rows = conn.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.queued)
        .values(status=OutboxStatus.suppressed, error_code="opted_out", updated_at=now,
                error="the recipient opted out (STOP or carrier): never sent")
        .returning(OutboxMessage.id, OutboxMessage.target_id, OutboxMessage.kind)
    ).all()
    for row in rows:
        log.info("sms outbox %s: suppressed (opted out)", row.id)
    return [Escalation(row.id, row.target_id, row.kind, "sms.suppressed", "opted_out") for row in rows]


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
        if isinstance(outcome, PermanentError) and outcome.code == UNSUBSCRIBED_CODE:
            conn.execute(opt_out_statement(claim.recipient, "carrier", conn.dialect.name))
            log.info("sms outbox %s: the recipient unsubscribed, opt-out recorded", claim.id)
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


