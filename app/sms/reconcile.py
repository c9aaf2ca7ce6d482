"""Reconciling ``unknown`` outbox messages: never resend blindly, ask the provider first.

After SMS_RECONCILE_AFTER_SECONDS the gateway is asked (``find_sent``) whether it took the
message. Found: ``sent`` (or ``delivered``, or ``failed``, as the provider says). Definitely not
there: ``queued`` again, due now (it never left, so sending is safe). The gateway cannot tell
(Twilio down): left ``unknown`` and asked again next tick — the round stops at the first failed
lookup, so a provider that times out does not hold up sending. After a day it is left alone:
marked ``unreconciled`` once and escalated to a person. Every update is conditional on
``status = 'unknown'`` and a fresh fence, so several workers can reconcile at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from app.core.db import utcnow
from app.extensions import db
from app.sms.gateways import SendResult
from app.sms.models import OutboxMessage, OutboxStatus
from app.sms.outbox import Escalation, escalate, write_transaction

log = logging.getLogger(__name__)

#: Twilio's statuses of a message it took, by what they mean for the outbox.
_DELIVERED = frozenset({"delivered", "read"})
_FAILED = frozenset({"failed", "undelivered", "canceled"})
#: Reconciliation looks this far before the claim (clocks differ).
RECONCILE_MARGIN = timedelta(minutes=5)
#: After this long, an unknown message is left for a person.
RECONCILE_GIVE_UP = timedelta(days=1)


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


@dataclass
class ReconcileResult:
    #: Unknown messages the provider turned out to have, and ones it did not (queued again).
    reconciled: int = 0
    requeued: int = 0


def reconcile_unknown(gateway, now: datetime | None = None, batch: int = 50) -> ReconcileResult:
    """Settle the ``unknown`` messages that are due for it; commits and escalates on its own.
    The worker's ``drain_once`` runs :func:`reconcile_round` before claiming."""
    now = now or utcnow()
    result, escalations = ReconcileResult(), []
    reconcile_round(gateway, now, batch, result, escalations)
    escalate(escalations)
    return result


def reconcile_round(gateway, now: datetime, batch: int, result, escalate: list) -> None:
    """One round (see the module doc); counts into ``result`` (anything with ``reconciled`` and
    ``requeued``) and appends to ``escalate``."""
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
        escalate.append(Escalation(doubt.id, doubt.target_id, doubt.kind, "sms.failed", "undelivered"))
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
        escalate.append(Escalation(row.id, row.target_id, row.kind, "sms.unreconciled", "unreconciled"))


def _take_doubts(now: datetime, batch: int) -> list[_Doubt]:
    """The unknown messages due for a lookup, each under a new fence (and ``updated_at`` moved to
    now, so no other worker looks them up at the same time)."""
    after = timedelta(seconds=current_app.config.get("SMS_RECONCILE_AFTER_SECONDS", 60))
    started = func.coalesce(OutboxMessage.claimed_at, OutboxMessage.created_at)
    due = (select(OutboxMessage.id, OutboxMessage.updated_at)
           .where(OutboxMessage.status == OutboxStatus.unknown, OutboxMessage.updated_at <= now - after,
                  started > now - RECONCILE_GIVE_UP)
           .order_by(OutboxMessage.updated_at, OutboxMessage.id).limit(batch))
    with write_transaction() as conn:
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
