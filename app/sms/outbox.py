"""What the outbox worker and the reconciler share: the write transaction that claims rows,
and escalating the messages that will not (or may not) arrive."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection

from app.extensions import db
from app.sms.models import OutboxMessage


@dataclass(frozen=True)
class Escalation:
    outbox_id: int
    target_id: int | None
    kind: str | None
    action: str  # sms.failed | sms.suppressed | sms.unknown | sms.unreconciled
    code: str


#: The escalations that mean the message will never arrive.
UNDELIVERABLE_ACTIONS = frozenset({"sms.failed", "sms.suppressed"})


@contextmanager
def write_transaction() -> Iterator[Connection]:
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


def escalate(events: list[Escalation]) -> None:
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
        if event.action in UNDELIVERABLE_ACTIONS and event.kind in UNDELIVERABLE_KINDS and event.target_id:
            message = db.session.get(OutboxMessage, event.outbox_id, populate_existing=True)
            announce_undeliverable(message, event.code)
