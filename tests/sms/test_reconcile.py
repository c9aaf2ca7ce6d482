"""Reconciling ``unknown`` messages: found at Twilio -> sent (never resent); not there -> queued
and sent once; Twilio unreachable -> left unknown and asked again next tick; after a day ->
``unreconciled`` once, escalated. The real SDK against the fake Twilio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from app.audit.models import AuditEvent
from app.core.db import utcnow
from app.extensions import db
from app.sms.gateways import ConsoleGateway, TransientError
from app.sms.models import OutboxMessage, OutboxStatus
from app.sms.reconcile import reconcile_unknown
from app.sms.twilio_gateway import TwilioGateway, _same_body
from app.sms.worker import drain_once
from tests.sms.fake_twilio import fake_twilio  # noqa: F401 - the fixture
from tests.sms.helpers import queue, received_per_outbox, rows, twilio_gateway

LATER = timedelta(seconds=61)  # past SMS_RECONCILE_AFTER_SECONDS (60 by default)


def _gets(fake) -> list[str]:
    return [path for method, path in fake.requests if method == "GET"]


def _unknown_after(fake, app, how) -> tuple[int, datetime]:
    """One message whose send ended unknown in the way ``how`` arranges on the fake."""
    with app.app_context():
        (outbox_id,) = queue(1)
    how()
    now = utcnow()
    with twilio_gateway(fake) as gateway, app.app_context():
        assert drain_once(gateway, "w1", now=now).unknown == 1
    return outbox_id, now


@pytest.mark.parametrize("how", ["drop", "503 after accepting"])
def test_a_message_twilio_took_is_marked_sent_and_never_resent(app, fake_twilio, how):  # noqa: F811
    plan = fake_twilio.drop_next if how == "drop" else lambda: fake_twilio.fail_next(503, 20500, record=True)
    outbox_id, now = _unknown_after(fake_twilio, app, plan)
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        assert drain_once(gateway, "w1", now=now + timedelta(seconds=30)).reconciled == 0  # too early
        assert _gets(fake_twilio) == []
        result = drain_once(gateway, "w1", now=now + LATER)
        again = drain_once(gateway, "w1", now=now + 2 * LATER)
    assert (result.reconciled, result.requeued, result.sent) == (1, 0, 0)
    assert (again.reconciled, again.sent) == (0, 0)
    [received] = fake_twilio.messages
    row = rows(app)[outbox_id]
    assert (row.status, row.provider_id, row.error_code) == (OutboxStatus.sent, received.sid, None)
    assert received_per_outbox(fake_twilio) == {outbox_id: 1}
    assert "To=%2B" in _gets(fake_twilio)[0] and "DateSent" not in _gets(fake_twilio)[0]


def test_a_message_twilio_never_took_is_sent_once(app, fake_twilio):  # noqa: F811
    outbox_id, now = _unknown_after(fake_twilio, app, lambda: fake_twilio.fail_next(503, 20500))
    assert fake_twilio.messages == []
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        result = drain_once(gateway, "w1", now=now + LATER)
        drain_once(gateway, "w1", now=now + 2 * LATER)
    assert (result.requeued, result.sent) == (1, 1)  # queued again, and sent in the same round
    assert received_per_outbox(fake_twilio) == {outbox_id: 1}
    row = rows(app)[outbox_id]
    assert (row.status, row.provider_id, row.attempts) == (OutboxStatus.sent, fake_twilio.messages[0].sid, 2)


def test_twilio_unreachable_leaves_it_unknown_and_asks_again_next_tick(app, fake_twilio):  # noqa: F811
    outbox_id, now = _unknown_after(fake_twilio, app, fake_twilio.drop_next)
    fake_twilio.refuse_connections()
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        down = drain_once(gateway, "w1", now=now + LATER)
        row = rows(app)[outbox_id]
        assert (row.status, row.error_code) == (OutboxStatus.unknown, "connection")
        fake_twilio.accept_connections()
        fake_twilio.fail_next(503, 20500)  # the list fails too: still cannot tell
        assert drain_once(gateway, "w1", now=now + LATER).reconciled == 0
        up = drain_once(gateway, "w1", now=now + LATER)  # the same moment: the next tick
    assert (down.reconciled, down.requeued, up.reconciled) == (0, 0, 1)
    assert rows(app)[outbox_id].status == OutboxStatus.sent
    assert received_per_outbox(fake_twilio) == {outbox_id: 1}


def test_a_failed_lookup_ends_the_round(app, fake_twilio):  # noqa: F811
    with app.app_context():
        ids = queue(3)
    for _ in ids:
        fake_twilio.fail_next(503, 20500)
    now = utcnow()
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        assert drain_once(gateway, "w1", now=now).unknown == 3
        fake_twilio.fail_next(503, 20500)  # the first lookup
        assert drain_once(gateway, "w1", now=now + LATER).requeued == 0
        assert len(_gets(fake_twilio)) == 1
        assert drain_once(gateway, "w1", now=now + LATER).requeued == 3  # all due again at once
    assert received_per_outbox(fake_twilio) == {i: 1 for i in ids}


def test_one_twilio_message_settles_one_row(app, fake_twilio):  # noqa: F811
    """The same text to the same number twice (a help reply): the message Twilio has for the
    first row is not taken as the second row's."""
    with app.app_context():
        first, second = queue(2, phone="+48600000001", body="Reply ACCEPT <code> or DECLINE <code>.")
    fake_twilio.fail_next(503, 20500, record=True)  # the first reached Twilio, the answer did not
    fake_twilio.fail_next(503, 20500)  # the second did not
    now = utcnow()
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        assert drain_once(gateway, "w1", now=now).unknown == 2
        drain_once(gateway, "w1", now=now + LATER)
    assert received_per_outbox(fake_twilio) == {first: 1, second: 1}
    found = rows(app)
    assert {found[first].status, found[second].status} == {OutboxStatus.sent}
    assert found[first].provider_id != found[second].provider_id


def test_a_message_already_settled_by_another_row_is_not_reused(app, fake_twilio):  # noqa: F811
    with app.app_context():
        sent, doubtful = queue(2, phone="+48600000001", body="Same text")
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        drain_once(gateway, "w1", batch=1)
        fake_twilio.fail_next(503, 20500)
        now = utcnow()
        assert drain_once(gateway, "w1", now=now).unknown == 1
        assert drain_once(gateway, "w1", now=now + LATER).requeued == 1
    assert received_per_outbox(fake_twilio) == {sent: 1, doubtful: 1}


@pytest.mark.parametrize("twilio_status,ours", [("delivered", OutboxStatus.delivered), ("sent", OutboxStatus.sent),
                                                ("undelivered", OutboxStatus.failed)])
def test_twilios_status_is_taken(app, fake_twilio, twilio_status, ours):  # noqa: F811
    outbox_id, now = _unknown_after(fake_twilio, app, fake_twilio.drop_next)
    fake_twilio.set_status(fake_twilio.messages[0].sid, twilio_status)
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        drain_once(gateway, "w1", now=now + LATER)
    assert rows(app)[outbox_id].status == ours


def test_after_a_day_it_is_left_for_a_person_once(app, fake_twilio):  # noqa: F811
    outbox_id, now = _unknown_after(fake_twilio, app, fake_twilio.drop_next)
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        for hours in (25, 26, 50):
            drain_once(gateway, "w1", now=now + timedelta(hours=hours))
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sms.unreconciled")).all()
        assert [e.detail["outbox"] for e in events] == [outbox_id]
    row = rows(app)[outbox_id]
    assert (row.status, row.error_code) == (OutboxStatus.unknown, "unreconciled")
    assert _gets(fake_twilio) == []  # never looked up: the day had passed


def test_the_console_never_sent_what_is_in_doubt(app, app_ctx):
    (outbox_id,) = queue(1)
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(
        status=OutboxStatus.sending, claimed_by="dead", fence=1, claimed_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    now = utcnow()
    assert drain_once(ConsoleGateway(), "w2", now=now).unknown == 1
    result = drain_once(ConsoleGateway(), "w2", now=now + LATER)
    assert (result.requeued, result.sent) == (1, 1)
    assert rows(app)[outbox_id].provider_id == f"console-{outbox_id}"


def test_reconcile_unknown_alone_and_its_setting(app, app_ctx, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_RECONCILE_AFTER_SECONDS", 600)
    (outbox_id,) = queue(1)
    now = utcnow()
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(
        status=OutboxStatus.unknown, updated_at=now, claimed_at=now))
    db.session.commit()
    assert reconcile_unknown(ConsoleGateway(), now + LATER).requeued == 0
    assert reconcile_unknown(ConsoleGateway(), now + timedelta(seconds=601)).requeued == 1
    assert rows(app)[outbox_id].status == OutboxStatus.queued


def test_two_workers_reconcile_a_row_once(app, fake_twilio):  # noqa: F811
    from tests.concurrency import run_together

    with app.app_context():
        ids = queue(30)
    for _ in ids:
        fake_twilio.fail_next(503, 20500)
    now = utcnow()
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        assert drain_once(gateway, "w0", now=now).unknown == 30

    def work(index, go):
        with twilio_gateway(fake_twilio) as gateway, app.app_context():
            go()
            result = drain_once(gateway, f"w{index}", batch=10, now=now + LATER)
            while drain_once(gateway, f"w{index}", batch=10, now=now + LATER).claimed:
                pass
            db.session.remove()
            return result.requeued

    requeued = run_together(3, work)
    assert sum(requeued) <= 30
    assert received_per_outbox(fake_twilio) == {i: 1 for i in ids}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.status != OutboxStatus.sent)) == 0


# -- TwilioGateway.find_sent ---------------------------------------------------------------

TO = "+447700900123"


@pytest.fixture
def gateway(fake_twilio):  # noqa: F811
    made = TwilioGateway(fake_twilio.gateway_config())
    yield made
    made.close()


def test_find_sent_reads_back_only_to_since(fake_twilio, gateway):  # noqa: F811
    sids = [gateway.send(TO, f"Body {n}", outbox_id=n).provider_id for n in range(5)]
    gateway.send("+447700900999", "Body 1", outbox_id=9)
    fake_twilio.max_page_size = 2
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert gateway.find_sent(TO, "Body 1", since).provider_id == sids[1]
    assert gateway.find_sent(TO, "Body 1", since, exclude={sids[1]}) is None
    assert gateway.find_sent(TO, "Body", since) is None  # the whole body, not a part
    before = len(_gets(fake_twilio))
    assert gateway.find_sent(TO, "Body 0", datetime.now(UTC) + timedelta(minutes=1)) is None
    assert len(_gets(fake_twilio)) == before + 1  # the newest was older than since: one page read


def test_find_sent_gives_up_rather_than_guess(fake_twilio, gateway, monkeypatch):  # noqa: F811
    monkeypatch.setattr("app.sms.twilio_gateway.FIND_SENT_SCAN_LIMIT", 3)
    for n in range(5):
        gateway.send(TO, f"Other {n}", outbox_id=n)
    with pytest.raises(TransientError):
        gateway.find_sent(TO, "Wanted", datetime.now(UTC) - timedelta(minutes=1))


def test_find_sent_errors_are_errors_not_answers(fake_twilio, gateway):  # noqa: F811
    fake_twilio.fail_next(500)
    with pytest.raises(TransientError):
        gateway.find_sent(TO, "x", datetime.now(UTC))
    fake_twilio.stop()
    with pytest.raises(TransientError):
        gateway.find_sent(TO, "x", datetime.now(UTC))


@pytest.mark.parametrize("theirs,same", [
    ("Hello there", True), ("Hello  there\n", True), ("Hello there Reply STOP to opt out", False),
    ("Hello there2", False), ("Hello", False), (None, False),
])
def test_same_body(theirs, same):
    assert _same_body(theirs, "Hello there") is same
