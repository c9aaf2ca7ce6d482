"""The outbox worker: due messages sent once, retries with backoff, permanent failures and
unknown outcomes never resent, expired claims left for reconciliation, two workers racing."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from app.audit.models import AuditEvent
from app.core.db import utcnow
from app.extensions import db
from app.sms.gateways import ConsoleGateway, PermanentError, SendResult, TransientError, UnknownOutcome
from app.sms.models import OutboxMessage, OutboxStatus
from app.sms.services import queue_message
from app.sms.worker import drain_once
from tests.concurrency import run_together


class CountingGateway:
    """A test double of the gateway interface: counts each send, then does what ``behaviour`` says."""

    def __init__(self, behaviour=None, delay: float = 0.0):
        self.calls: list[int] = []
        self.lock = threading.Lock()
        self.behaviour = behaviour
        self.delay = delay

    def send(self, to: str, body: str, outbox_id: int) -> SendResult:
        with self.lock:
            self.calls.append(outbox_id)
        if self.delay:
            time.sleep(self.delay)
        if self.behaviour is not None:
            self.behaviour(outbox_id)
        return SendResult(provider_id=f"SM{outbox_id:032d}", status="sent")


def _queue(n: int, *, due_in: timedelta | None = None) -> list[int]:
    ids = []
    for i in range(n):
        ids.append(queue_message(f"test:{i}:{due_in}", f"+4860000{i:04d}", "pl", f"Body {i}").id)
    if due_in is not None:
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                           .values(next_attempt_at=utcnow() + due_in))
    db.session.commit()
    return ids


def _row(outbox_id: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, outbox_id)


def test_due_messages_are_sent_once(app_ctx):
    due = _queue(2)
    (later,) = _queue(1, due_in=timedelta(minutes=10))
    result = drain_once(ConsoleGateway(), "w1")
    assert (result.sent, result.failed, result.retried, result.unknown) == (2, 0, 0, 0)
    for outbox_id in due:
        row = _row(outbox_id)
        assert row.status == OutboxStatus.sent and row.provider_id == f"console-{outbox_id}"
        assert row.attempts == 1 and row.claimed_by == "w1" and row.fence == 1
    assert _row(later).status == OutboxStatus.queued
    gateway = CountingGateway()
    assert drain_once(gateway, "w1").sent == 0
    assert drain_once(gateway, "w1", now=utcnow() + timedelta(minutes=11)).sent == 1
    assert gateway.calls == [later]


def test_a_temporary_error_is_retried_later_with_backoff(app_ctx):
    (outbox_id,) = _queue(1)
    now = utcnow()

    def down(_id):
        raise TransientError("provider unavailable", code="503")

    result = drain_once(CountingGateway(down), "w1", now=now)
    assert result.retried == 1
    row = _row(outbox_id)
    assert row.status == OutboxStatus.queued and row.attempts == 1 and row.error_code == "503"
    assert now + timedelta(seconds=15) <= row.next_attempt_at <= now + timedelta(seconds=30)
    gateway = CountingGateway()
    assert drain_once(gateway, "w1", now=now + timedelta(seconds=5)).sent == 0  # not due yet
    assert drain_once(gateway, "w1", now=now + timedelta(seconds=31)).sent == 1
    row = _row(outbox_id)
    assert row.status == OutboxStatus.sent and row.attempts == 2 and row.error_code is None
    assert gateway.calls == [outbox_id]


def test_backoff_grows_and_gives_up_with_an_audit_event(app, app_ctx, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_MAX_ATTEMPTS", 3)
    (outbox_id,) = _queue(1)

    def down(_id):
        raise TransientError("timeout before connecting")

    gateway, now, delays = CountingGateway(down), utcnow(), []
    for _ in range(3):
        drain_once(gateway, "w1", now=now)
        row = _row(outbox_id)
        delays.append(row.next_attempt_at - now)
        now = row.next_attempt_at
    assert delays[1] > timedelta(seconds=30)  # the second wait is at least 30 s (60 s with jitter)
    assert row.status == OutboxStatus.failed and row.attempts == 3
    assert len(gateway.calls) == 3
    assert drain_once(gateway, "w1", now=now + timedelta(days=1)).sent == 0
    assert len(gateway.calls) == 3
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sms.failed"))
    assert event.detail["outbox"] == outbox_id


def test_a_permanent_error_fails_and_is_never_retried(app_ctx):
    (outbox_id,) = _queue(1)

    def invalid(_id):
        raise PermanentError("21211", "invalid 'To' number")

    gateway = CountingGateway(invalid)
    assert drain_once(gateway, "w1").failed == 1
    row = _row(outbox_id)
    assert row.status == OutboxStatus.failed and row.error_code == "21211"
    assert drain_once(gateway, "w1", now=utcnow() + timedelta(days=1)).failed == 0
    assert gateway.calls == [outbox_id]


def test_an_unknown_outcome_is_not_resent(app_ctx):
    (outbox_id,) = _queue(1)

    def timed_out(_id):
        raise UnknownOutcome("read timeout after the request was sent")

    gateway = CountingGateway(timed_out)
    assert drain_once(gateway, "w1").unknown == 1
    assert _row(outbox_id).status == OutboxStatus.unknown
    drain_once(gateway, "w1", now=utcnow() + timedelta(days=1))
    assert gateway.calls == [outbox_id]


def test_an_unexpected_gateway_exception_counts_as_unknown(app_ctx):
    (outbox_id,) = _queue(1)

    def broken(_id):
        raise RuntimeError("bug")

    assert drain_once(CountingGateway(broken), "w1").unknown == 1
    assert _row(outbox_id).error_code == "gateway_exception"


def test_an_expired_claim_becomes_unknown_and_is_not_resent(app, app_ctx):
    (outbox_id,) = _queue(1)
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(
        status=OutboxStatus.sending, claimed_by="dead-worker", fence=1,
        claimed_at=utcnow() - timedelta(seconds=app.config["SMS_LEASE_SECONDS"] + 1)))
    db.session.commit()
    gateway = CountingGateway()
    assert drain_once(gateway, "w2").unknown == 1
    row = _row(outbox_id)
    assert row.status == OutboxStatus.unknown and row.error_code == "lease_expired"
    assert gateway.calls == []


def test_a_worker_that_lost_its_claim_records_nothing(app, app_ctx):
    (outbox_id,) = _queue(1)
    later = utcnow() + timedelta(hours=1)

    def slow_send(_id):  # meanwhile the lease runs out and another worker takes over
        assert drain_once(CountingGateway(), "w2", now=later).unknown == 1

    drain_once(CountingGateway(slow_send), "w1")
    row = _row(outbox_id)
    assert row.status == OutboxStatus.unknown and row.provider_id is None


def test_two_workers_send_each_message_exactly_once(app):
    with app.app_context():
        ids = _queue(200)
    gateway = CountingGateway(delay=0.001)

    def work(index, go):
        go()
        with app.app_context():
            while sum(vars(drain_once(gateway, f"w{index}", batch=10)).values()):
                pass
            db.session.remove()

    run_together(2, work, timeout=120)
    assert sorted(gateway.calls) == sorted(ids)  # each once
    with app.app_context():
        assert {r.status for r in db.session.scalars(select(OutboxMessage))} == {OutboxStatus.sent}


def test_logs_name_the_outbox_id_never_the_number_or_the_body(app_ctx, caplog):
    (outbox_id,) = _queue(1)
    with caplog.at_level(logging.DEBUG, logger="app.sms"):
        drain_once(ConsoleGateway(), "w1")
    assert f"outbox {outbox_id}" in caplog.text
    assert "+4860000" not in caplog.text and "Body 0" not in caplog.text


def test_worker_once_from_the_command_line(app):
    with app.app_context():
        ids = _queue(3)
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 3" in result.output
    with app.app_context():
        assert all(_row(i).status == OutboxStatus.sent for i in ids)
