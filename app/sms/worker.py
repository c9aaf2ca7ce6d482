"""The outbox worker: claim due messages, send each once, record what happened.

Each ``drain_once``:

1. Expires leases: a claim older than SMS_LEASE_SECONDS (its worker died mid-send) may or may
   not have been sent: it becomes ``unknown``, never resent blindly.
2. Reconciles ``unknown`` messages (``reconcile_unknown``): after SMS_RECONCILE_AFTER_SECONDS it
   asks the gateway (``find_sent``) whether the provider took the message. Found: ``sent`` (or
   ``delivered``, or ``failed``, as the provider says). Definitely not there: ``queued`` again,
   due now (it never left, so sending is safe). The gateway cannot tell (Twilio down): left
   ``unknown`` and asked again next tick (the round stops at the first failed lookup, so a
   provider that times out does not hold up sending for every message in doubt). After a day it is left alone: marked
   ``unreconciled`` once and escalated to a person.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, exists, func, select, update

from app.core.db import utcnow
from app.extensions import db
from app.sms.gateways import PermanentError, SendResult, TransientError, UnknownOutcome
from app.sms.inbound import opt_out_statement
from app.sms.models import OptOut, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
#: Twilio: "Attempt to send to unsubscribed recipient".
UNSUBSCRIBED_CODE = "21610"
#: Twilio's statuses of a message it took, by what they mean for the outbox.
_DELIVERED = frozenset({"delivered", "read"})
_FAILED = frozenset({"failed", "undelivered", "canceled"})
#: Reconciliation looks this far before the claim (clocks differ).
RECONCILE_MARGIN = timedelta(minutes=5)
#: After this long, an unknown message is left for a person.
RECONCILE_GIVE_UP = timedelta(days=1)


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


@dataclass(frozen=True)
class _Doubt:
    """An unknown message taken for reconciliation under ``fence``."""

    id: int
    recipient: str
    body: str
    fence: int
    since: datetime
    updated_at: datetime
    target_id: int | None
    kind: str | None


@dataclass(frozen=True)
class _Escalation:
    outbox_id: int
    target_id: int | None
    kind: str | None
    action: str  # sms.failed | sms.suppressed | sms.unknown | sms.unreconciled
    code: str


#: The escalations that mean the message will never arrive.
_UNDELIVERABLE_ACTIONS = frozenset({"sms.failed", "sms.suppressed"})


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter after ``attempts`` failed attempts (capped at an hour)."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=delay * random.uniform(0.5, 1.0))


def drain_once(gateway, worker_id: str, batch: int = 50, now: datetime | None = None) -> DrainResult:
    """Send what is due now (at most ``batch`` messages) through ``gateway``; see the module doc."""
    now = now or utcnow()
    result = DrainResult()
    escalate: list[_Escalation] = []
    result.unknown += _expire_leases(now, escalate)
    _reconcile(gateway, now, batch, result, escalate)
    claims, suppressed = _claim(worker_id, batch, now)
    result.claimed, result.suppressed = len(claims) + len(suppressed), len(suppressed)
    escalate.extend(suppressed)
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
            escalate.append(_Escalation(claim.id, claim.target_id, claim.kind, "sms.failed", _code(outcome)))
        else:
            result.unknown += 1
            escalate.append(_Escalation(claim.id, claim.target_id, claim.kind, "sms.unknown", _code(outcome)))
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
            .returning(OutboxMessage.id, OutboxMessage.target_id, OutboxMessage.kind)
        ).all()
    for row in rows:
        log.warning("sms outbox %s: unknown (lease expired)", row.id)
        escalate.append(_Escalation(row.id, row.target_id, row.kind, "sms.unknown", "lease_expired"))
    return len(rows)


# -- reconciliation ------------------------------------------------------------------------


def reconcile_unknown(gateway, now: datetime | None = None, batch: int = 50) -> DrainResult:
    """Settle the ``unknown`` messages that are due for it (see the module doc, step 2); commits
    and escalates on its own. ``drain_once`` runs it before claiming."""
    now = now or utcnow()
    result, escalate = DrainResult(), []
    _reconcile(gateway, now, batch, result, escalate)
    _escalate(escalate)
    return result


def _reconcile(gateway, now: datetime, batch: int, result: DrainResult, escalate: list) -> None:
    _give_up_old_doubts(now, escalate)
    seen: set[str] = set()  # the provider ids given to rows in this round: one message, one row
    doubts = _take_doubts(now, batch)
    for index, doubt in enumerate(doubts):
        try:
            found = gateway.find_sent(doubt.recipient, doubt.body, doubt.since,
                                      exclude=_known_provider_ids(doubt) | seen)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the answer is "cannot tell"
            log.warning("sms outbox %s: reconciliation lookup failed (%s), asking again later",
                        doubt.id, type(exc).__name__)
            for left in doubts[index:]:  # the provider is likely down: no time spent on the others
                _release(left)
            return
        if found is None:
            result.requeued += _requeue(doubt, now)
        else:
            seen.add(found.provider_id)
            result.reconciled += _settle_found(doubt, found, now, escalate)


def _requeue(doubt: _Doubt, now: datetime) -> bool:
    """The provider never took it: due now, to be sent like any queued message."""
    if not _settle(doubt, status=OutboxStatus.queued, next_attempt_at=now, claimed_by=None, updated_at=now,
                   error_code="not_sent", error="reconciled: the provider never took it; sent again"):
        return False
    log.info("sms outbox %s: not taken by the provider, queued again", doubt.id)
    return True


def _settle_found(doubt: _Doubt, found: SendResult, now: datetime, escalate: list) -> bool:
    """The provider has it: its id and status (failed at the provider escalates like a failure)."""
    status = _found_status(found)
    values = {"status": status, "provider_id": found.provider_id, "updated_at": now, "error_code": None,
              "error": None}
    if status == OutboxStatus.failed:
        values.update(error_code="undelivered", error=f"reconciled: the provider's status is {found.status[:20]}")
    if not _settle(doubt, **values):
        return False
    log.info("sms outbox %s: reconciled as %s", doubt.id, status.value)
    if status == OutboxStatus.failed:
        escalate.append(_Escalation(doubt.id, doubt.target_id, doubt.kind, "sms.failed", "undelivered"))
    return True


def _found_status(found: SendResult) -> OutboxStatus:
    status = (found.status or "").lower()
    if status in _DELIVERED:
        return OutboxStatus.delivered
    return OutboxStatus.failed if status in _FAILED else OutboxStatus.sent


def _give_up_old_doubts(now: datetime, escalate: list) -> None:
    """Unknown for more than a day: marked ``unreconciled`` and escalated, once."""
    started = func.coalesce(OutboxMessage.claimed_at, OutboxMessage.created_at)
    with db.engine.begin() as conn:
        rows = conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.unknown, started <= now - RECONCILE_GIVE_UP,
                   OutboxMessage.error_code.is_distinct_from("unreconciled"))
            .values(error_code="unreconciled", updated_at=now,
                    error="unknown for more than a day: check with the provider by hand")
            .returning(OutboxMessage.id, OutboxMessage.target_id, OutboxMessage.kind)
        ).all()
    for row in rows:
        log.warning("sms outbox %s: unreconciled after a day, escalated", row.id)
        escalate.append(_Escalation(row.id, row.target_id, row.kind, "sms.unreconciled", "unreconciled"))


def _take_doubts(now: datetime, batch: int) -> list[_Doubt]:
    """The unknown messages due for a lookup, each under a new fence (and ``updated_at`` moved to
    now, so no other worker looks them up at the same time)."""
    after = timedelta(seconds=current_app.config.get("SMS_RECONCILE_AFTER_SECONDS", 60))
    started = func.coalesce(OutboxMessage.claimed_at, OutboxMessage.created_at)
    due = (select(OutboxMessage.id, OutboxMessage.updated_at)
           .where(OutboxMessage.status == OutboxStatus.unknown, OutboxMessage.updated_at <= now - after,
                  started > now - RECONCILE_GIVE_UP)
           .order_by(OutboxMessage.updated_at, OutboxMessage.id).limit(batch))
    with _write_transaction() as conn:
        if conn.dialect.name != "sqlite":
            due = due.with_for_update(skip_locked=True)
        before = dict(conn.execute(due).all())
        rows = []
        if before:
            rows = conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(before), OutboxMessage.status == OutboxStatus.unknown)
                .values(fence=OutboxMessage.fence + 1, updated_at=now)
                .returning(OutboxMessage.id, OutboxMessage.recipient, OutboxMessage.body, OutboxMessage.fence,
                           started, OutboxMessage.target_id, OutboxMessage.kind)
            ).all()
    return sorted((_Doubt(row[0], row[1], row[2], row[3], row[4] - RECONCILE_MARGIN, before[row[0]],
                          row[5], row[6]) for row in rows), key=lambda d: d.id)


def _known_provider_ids(doubt: _Doubt) -> set[str]:
    """The provider ids other rows to the same number got since then: not this row's message."""
    with db.engine.connect() as conn:
        return set(conn.scalars(
            select(OutboxMessage.provider_id)
            .where(OutboxMessage.recipient == doubt.recipient, OutboxMessage.id != doubt.id,
                   OutboxMessage.provider_id.is_not(None),
                   OutboxMessage.updated_at >= doubt.since - RECONCILE_MARGIN)))


def _settle(doubt: _Doubt, **values) -> bool:
    """Record a reconciliation's result, only if the row is still unknown under our fence."""
    with db.engine.begin() as conn:
        return conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == doubt.id, OutboxMessage.status == OutboxStatus.unknown,
                   OutboxMessage.fence == doubt.fence)
            .values(**values)
        ).rowcount == 1


def _release(doubt: _Doubt) -> None:
    """The lookup failed: due again at the next tick."""
    _settle(doubt, updated_at=doubt.updated_at)


# -- claiming, sending, recording ------------------------------------------------------------


@contextmanager
def _write_transaction() -> Iterator[Connection]:
    """A connection in a transaction, committed on success, that takes the write lock first on
    SQLite (``BEGIN IMMEDIATE``): no two workers read the same rows to update."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _claim(worker_id: str, batch: int, now: datetime) -> tuple[list[_Claim], list[_Escalation]]:
    """Take up to ``batch`` due rows: the opted-out ones become ``suppressed``, the others
    ``sending`` under this worker's claim — in one transaction."""
    opted_out = exists().where(OptOut.phone == OutboxMessage.recipient)
    due = (select(OutboxMessage.id, opted_out.label("opted_out"))
           .where(OutboxMessage.status == OutboxStatus.queued, OutboxMessage.next_attempt_at <= now)
           .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(batch))
    with _write_transaction() as conn:
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


def _suppress(conn, ids: list[int], now: datetime) -> list[_Escalation]:
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
    return [_Escalation(row.id, row.target_id, row.kind, "sms.suppressed", "opted_out") for row in rows]


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


def _escalate(events: list[_Escalation]) -> None:
    """Record an audit event on the referral for each message that will not arrive (or may not),
    commit, then announce the undeliverable referrals and reminders (app.sms.signals)."""
    if not events:
        return
    from app.audit.services import record_event
    from app.referrals.models import ReferralTarget
    from app.sms.signals import UNDELIVERABLE_KINDS, announce_undeliverable

    for event in events:
        target = db.session.get(ReferralTarget, event.target_id) if event.target_id else None
        record_event(event.action, referral=target.referral if target else None,
                     detail={"outbox": event.outbox_id, "target": target.code if target else None,
                             "error": event.code})
    db.session.commit()
    for event in events:
        if event.action in _UNDELIVERABLE_ACTIONS and event.kind in UNDELIVERABLE_KINDS and event.target_id:
            message = db.session.get(OutboxMessage, event.outbox_id, populate_existing=True)
            announce_undeliverable(message, event.code)
