"""The worker draining the real outbox through the real Twilio SDK to the fake Twilio server."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.sms.gateways import get_gateway
from app.sms.models import OutboxMessage, OutboxStatus
from app.sms.services import queue_message
from app.sms.worker import drain_once
from tests.sms.fake_twilio import fake_twilio  # noqa: F401 - the fixture


def test_worker_sends_through_twilio_once_and_stops_on_permanent_errors(app, fake_twilio):  # noqa: F811
    saved = dict(app.config)
    app.config.update(fake_twilio.gateway_config(SMS_BACKEND="twilio"))
    try:
        with app.app_context():
            for n in range(3):
                queue_message(f"test:{n}", f"+4850000010{n}", "pl", f"Skierowanie K{n} — odpowiedz ACCEPT K{n}")
            db.session.commit()
            gateway = get_gateway(app)
            first = drain_once(gateway, "worker-a")
            again = drain_once(gateway, "worker-b")
            fake_twilio.fail_next(status=400, code=21211)
            queue_message("test:bad", "+48500000999", "pl", "Skierowanie KX")
            db.session.commit()
            failed = drain_once(gateway, "worker-a")
            rows = {m.idempotency_key: m for m in db.session.scalars(select(OutboxMessage))}
    finally:
        app.config.clear()
        app.config.update(saved)
    assert (first.sent, again.sent, failed.failed) == (3, 0, 1)
    sent = [m for m in fake_twilio.messages if m.to != "+48500000999"]
    assert sorted(m.body for m in sent) == sorted(f"Skierowanie K{n} — odpowiedz ACCEPT K{n}" for n in range(3))
    assert all(m.status_callback.startswith("https://pathways.example.org/sms/status?outbox=") for m in sent)
    assert {rows[f"test:{n}"].provider_id for n in range(3)} == {m.sid for m in sent}
    assert rows["test:bad"].status == OutboxStatus.failed and rows["test:bad"].error_code == "21211"
