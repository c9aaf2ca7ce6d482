"""``message_undeliverable``: sent for a referral or reminder (with a target) that failed for good
or was suppressed, by the worker and by the status callback; never for unknown, nor for other
kinds; a receiver that raises loses nothing."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from app.audit.models import AuditEvent
from app.audit.services import record_event
from app.core.db import utcnow
from app.extensions import db
from app.referrals.models import ReferralTarget
from app.sms.gateways import PermanentError, SendResult, TransientError, UnknownOutcome
from app.sms.models import OptOut, OutboxMessage, OutboxStatus
from app.sms.services import queue_message
from app.sms.signals import message_undeliverable
from app.sms.worker import drain_once
from tests.sms.test_inbound import PHONE, _callback, _target, signed  # noqa: F401


class Gateway:
    def __init__(self, outcome=None):
        self.outcome = outcome
        self.calls = 0

    def send(self, to, body, outbox_id):
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return SendResult(provider_id=f"SM{outbox_id}")

    def find_sent(self, to, body, since, *, exclude=()):
        return None


@pytest.fixture
def heard():
    """What a receiver saw: (outbox id, status it found, reason, kind)."""
    calls = []

    def receiver(message, reason=None, **_kwargs):
        calls.append((message.id, message.status, reason, message.kind))

    message_undeliverable.connect(receiver)
    yield calls
    message_undeliverable.disconnect(receiver)


def _target_alone(app, client, login_as) -> int:
    """A sent referral's target, without the new-referral messages sending it queued."""
    target_id, _code = _target(app, client, login_as)
    with app.app_context():
        db.session.execute(delete(OutboxMessage))
        db.session.commit()
    return target_id


def _message(app, target_id, kind="referral", key="k1", phone=PHONE) -> int:
    with app.app_context():
        target = db.session.get(ReferralTarget, target_id) if target_id else None
        message = queue_message(key, phone, "en", "New referral", target=target, kind=kind)
        db.session.commit()
        return message.id


def _drain(app, gateway, **kwargs):
    with app.app_context():
        result = drain_once(gateway, "w1", **kwargs)
        db.session.remove()
        return result


@pytest.mark.parametrize("kind", ["referral", "reminder"])
def test_a_permanent_failure_is_announced(app, client, login_as, heard, kind):
    target_id = _target_alone(app, client, login_as)
    outbox_id = _message(app, target_id, kind=kind)
    _drain(app, Gateway(PermanentError("21211", "invalid number")))
    assert heard == [(outbox_id, OutboxStatus.failed, "21211", kind)]


def test_giving_up_is_announced(app, client, login_as, heard, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_MAX_ATTEMPTS", 2)
    target_id = _target_alone(app, client, login_as)
    outbox_id = _message(app, target_id)
    gateway = Gateway(TransientError("down", code="connect"))
    _drain(app, gateway)
    assert heard == []  # a retry is no failure
    _drain(app, gateway, now=utcnow() + timedelta(hours=2))
    assert heard == [(outbox_id, OutboxStatus.failed, "connect", "referral")]


def test_an_opted_out_number_is_announced(app, client, login_as, heard):
    target_id = _target_alone(app, client, login_as)
    outbox_id = _message(app, target_id)
    with app.app_context():
        db.session.add(OptOut(phone=PHONE, source="stop"))
        db.session.commit()
    gateway = Gateway()
    _drain(app, gateway)
    assert heard == [(outbox_id, OutboxStatus.suppressed, "opted_out", "referral")]
    assert gateway.calls == 0


def test_a_failed_status_callback_is_announced_once(app, client, login_as, signed, heard):  # noqa: F811
    target_id = _target_alone(app, client, login_as)
    outbox_id = _message(app, target_id)
    with app.app_context():
        message = db.session.get(OutboxMessage, outbox_id)
        message.status, message.provider_id = OutboxStatus.sent, "SMout1"
        db.session.commit()
    assert _callback(app, client, outbox_id, "undelivered", ErrorCode="30003").status_code == 204
    assert _callback(app, client, outbox_id, "failed", ErrorCode="30006").status_code == 204  # no change
    assert heard == [(outbox_id, OutboxStatus.failed, "30003", "referral")]


def test_not_announced_for_unknown_delivered_or_other_kinds(app, client, login_as, signed, heard):  # noqa: F811
    target_id = _target_alone(app, client, login_as)
    _message(app, target_id, key="unknown")
    _drain(app, Gateway(UnknownOutcome("timeout", code="timeout")))
    reply = _message(app, target_id, kind="reply", key="reply")
    no_target = _message(app, None, key="no-target")
    _drain(app, Gateway(PermanentError("21211")))
    delivered = _message(app, target_id, key="delivered")
    _drain(app, Gateway())
    with app.app_context():
        db.session.get(OutboxMessage, delivered).provider_id = "SMout1"
        db.session.commit()
    _callback(app, client, delivered, "delivered")
    assert heard == []
    with app.app_context():
        statuses = {m.id: m.status for m in db.session.scalars(select(OutboxMessage))}
    assert statuses[reply] == statuses[no_target] == OutboxStatus.failed
    assert statuses[delivered] == OutboxStatus.delivered


def test_a_raising_receiver_loses_nothing(app, client, login_as, heard, caplog):
    target_id = _target_alone(app, client, login_as)
    outbox_id = _message(app, target_id)

    def broken(message, **_kwargs):
        record_event("test.half_done", detail={"outbox": message.id})
        raise RuntimeError("receiver bug")

    def writer(message, reason=None, **_kwargs):
        record_event("test.written", detail={"outbox": message.id, "reason": reason})

    message_undeliverable.connect(broken)
    message_undeliverable.connect(writer)
    try:
        with caplog.at_level(logging.ERROR, logger="app.sms"):
            _drain(app, Gateway(PermanentError("21211")))
    finally:
        message_undeliverable.disconnect(broken)
        message_undeliverable.disconnect(writer)
    with app.app_context():
        assert db.session.get(OutboxMessage, outbox_id).status == OutboxStatus.failed
        actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert "sms.failed" in actions and "test.written" in actions and "test.half_done" not in actions
    assert heard == [(outbox_id, OutboxStatus.failed, "21211", "referral")]
    [record] = [r for r in caplog.records if "receiver failed" in r.getMessage()]
    assert record.getMessage() == f"sms outbox {outbox_id}: a message_undeliverable receiver failed"
    assert PHONE not in caplog.text


def test_a_raising_receiver_on_the_status_callback_keeps_the_status(app, client, login_as, signed):  # noqa: F811
    target_id = _target_alone(app, client, login_as)
    outbox_id = _message(app, target_id)
    with app.app_context():
        message = db.session.get(OutboxMessage, outbox_id)
        message.status, message.provider_id = OutboxStatus.sent, "SMout1"
        db.session.commit()

    def broken(message, **_kwargs):
        raise RuntimeError("receiver bug")

    message_undeliverable.connect(broken)
    try:
        assert _callback(app, client, outbox_id, "failed", ErrorCode="30006").status_code == 204
    finally:
        message_undeliverable.disconnect(broken)
    with app.app_context():
        message = db.session.get(OutboxMessage, outbox_id)
        assert (message.status, message.error_code) == (OutboxStatus.failed, "30006")


def test_reconciled_as_undelivered_is_announced(app, client, login_as, heard):
    target_id = _target_alone(app, client, login_as)
    outbox_id = _message(app, target_id)
    _drain(app, Gateway(UnknownOutcome("timeout", code="timeout")))
    assert heard == []

    class Undelivered(Gateway):
        def find_sent(self, to, body, since, *, exclude=()):
            return SendResult(provider_id="SMlate", status="undelivered")

    _drain(app, Undelivered(), now=utcnow() + timedelta(minutes=2))
    assert heard == [(outbox_id, OutboxStatus.failed, "undelivered", "referral")]
