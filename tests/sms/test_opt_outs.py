"""Opt-outs: STOP by SMS (any supported language) and Twilio's 21610 record an opt-out; the
worker never attempts a message to an opted-out number (suppressed); START re-enables it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.core.db import utcnow
from app.extensions import db
from app.sms.gateways import ConsoleGateway
from app.sms.models import InboundResult, OptOut, OutboxStatus
from app.sms.services import queue_message
from app.sms.worker import drain_once
from tests.sms.fake_twilio import fake_twilio  # noqa: F401 - the fixture
from tests.sms.helpers import queue, rows, twilio_gateway
from tests.sms.test_inbound import OTHER_PHONE, PHONE, _inbound, _replies, _sms, signed  # noqa: F401


def _opt_outs(app) -> dict[str, str]:
    with app.app_context():
        return {o.phone: o.source for o in db.session.scalars(select(OptOut))}


def test_stop_by_sms_suppresses_everything_to_that_number_until_start(app, client, signed, fake_twilio):  # noqa: F811
    _sms(app, client, "STOP", sid="SMstop1", sender="+48 600 000 001")  # any spelling of the number
    assert _opt_outs(app) == {PHONE: "stop"}
    assert _inbound(app)[0].result == InboundResult.opted_out
    with app.app_context():
        suppressed = queue(2, prefix="before", phone=PHONE)
        (other,) = queue(1, prefix="other", phone=OTHER_PHONE)
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        first = drain_once(gateway, "w1")
        later = [drain_once(gateway, "w1", now=utcnow() + timedelta(days=d)) for d in (1, 2)]
    assert (first.sent, first.suppressed) == (1, 2)
    assert all(r.sent == r.suppressed == 0 for r in later)
    assert [m.to for m in fake_twilio.messages] == [OTHER_PHONE]
    found = rows(app)
    for outbox_id in suppressed:
        assert (found[outbox_id].status, found[outbox_id].error_code, found[outbox_id].attempts) == (
            OutboxStatus.suppressed, "opted_out", 0)
        assert found[outbox_id].provider_id is None and found[outbox_id].claimed_by is None
    assert found[other].status == OutboxStatus.sent

    _sms(app, client, "start", sid="SMstart1")
    assert _opt_outs(app) == {}
    assert _inbound(app)[-1].result == InboundResult.applied and _inbound(app)[-1].target_id is None
    assert _replies(app) == []  # Twilio answers STOP and START itself
    with app.app_context():
        (after,) = queue(1, prefix="after", phone=PHONE)
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        assert drain_once(gateway, "w1").sent == 1
    assert [m.outbox_id for m in fake_twilio.messages if m.to == PHONE] == [after]
    assert all(rows(app)[i].status == OutboxStatus.suppressed for i in suppressed)  # never sent later


def test_stop_in_another_language_once_and_again_keeps_one_opt_out(app, client, signed):  # noqa: F811
    _sms(app, client, "Baja, por favor", sid="SMbaja")
    _sms(app, client, "СТОП", sid="SMstop")
    assert _opt_outs(app) == {PHONE: "stop"}
    assert [r.result for r in _inbound(app)] == [InboundResult.opted_out] * 2


def test_start_with_a_code_is_no_opt_in(app, client, signed):  # noqa: F811
    _sms(app, client, "STOP", sid="SMstop")
    _sms(app, client, "YES K7M2QX", sid="SMyes")
    assert _opt_outs(app) == {PHONE: "stop"}
    assert _inbound(app)[-1].result == InboundResult.not_understood


def test_unsubscribed_at_twilio_is_an_opt_out_and_later_messages_are_suppressed(app, fake_twilio):  # noqa: F811
    with app.app_context():
        (first,) = queue(1, prefix="first", phone=PHONE)
    fake_twilio.fail_next(status=400, code=21610)
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        assert drain_once(gateway, "w1").failed == 1
        (second,) = queue(1, prefix="second", phone=PHONE)
        assert drain_once(gateway, "w1").suppressed == 1
    assert _opt_outs(app) == {PHONE: "carrier"}
    found = rows(app)
    assert (found[first].status, found[first].error_code) == (OutboxStatus.failed, "21610")
    assert found[second].status == OutboxStatus.suppressed
    assert len([r for r in fake_twilio.requests if r[0] == "POST"]) == 1


def test_a_carrier_opt_out_is_kept_when_stop_follows(app, client, signed):  # noqa: F811
    with app.app_context():
        db.session.add(OptOut(phone=PHONE, source="carrier"))
        db.session.commit()
    _sms(app, client, "STOP")
    assert _opt_outs(app) == {PHONE: "carrier"}


def test_suppression_is_audited(app, app_ctx):
    db.session.add(OptOut(phone=PHONE, source="stop"))
    (outbox_id,) = queue(1, phone=PHONE)
    drain_once(ConsoleGateway(), "w1")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sms.suppressed"))
    assert event.detail == {"outbox": outbox_id, "target": None, "error": "opted_out"}


def test_only_due_messages_are_suppressed(app, app_ctx):
    db.session.add(OptOut(phone=PHONE, source="stop"))
    message = queue_message("later", PHONE, "en", "Later")
    message.next_attempt_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    assert drain_once(ConsoleGateway(), "w1").suppressed == 0
    assert rows(app)[message.id].status == OutboxStatus.queued
    assert drain_once(ConsoleGateway(), "w1", now=utcnow() + timedelta(hours=2)).suppressed == 1


def test_dev_page_shows_suppressed_messages(app, client, login_as):
    with app.app_context():
        db.session.add(OptOut(phone=PHONE, source="stop"))
        queue(1, phone=PHONE, body="A message nobody will get")
        drain_once(ConsoleGateway(), "w1")
    login_as("admin")
    page = client.get("/dev/sms/").get_data(as_text=True)
    assert "A message nobody will get" in page
    assert "suppressed" in page and "opted_out" in page


def test_many_workers_suppress_each_message_once(app):
    from tests.concurrency import run_together

    with app.app_context():
        db.session.add(OptOut(phone=PHONE, source="stop"))
        queue(60, prefix="x", phone=PHONE)

    def work(index, go):
        go()
        with app.app_context():
            total = 0
            while (result := drain_once(ConsoleGateway(), f"w{index}", batch=7)).claimed:
                total += result.suppressed
            db.session.remove()
            return total

    assert sum(run_together(4, work)) == 60
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "sms.suppressed")) == 60
