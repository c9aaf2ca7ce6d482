"""Fifty answers to one referral target at the same moment, on the web and by SMS: exactly one
acceptance wins, every other answer is told the target was already answered, nothing fails."""

from __future__ import annotations

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.referrals.models import ReferralTarget, TargetStatus
from app.sms.models import InboundMessage, InboundResult, OutboxMessage
from tests.concurrency import run_together
from tests.conftest import Client
from tests.inbox.test_inbox import _provider_of
from tests.sms.test_inbound import PHONE, _sign, _target, signed  # noqa: F401 - signed: the fixture

RACERS = 50


def test_fifty_accepts_on_the_web_and_by_sms_one_winner(app, client, login_as, signed):  # noqa: F811
    target_id, code = _target(app, client, login_as)  # its service texts from PHONE
    email = _provider_of(app, target_id)

    def race(index: int, go):
        if index % 2:  # the web: a provider focal point of the receiving organisation
            racer = Client(app)
            racer.login(email)
            token = racer.csrf_token()
            go()
            response = racer.post(f"/inbox/{target_id}/accept", data={"csrf_token": token})
            return "web", response.status_code, response.get_data(as_text=True)
        params = {"MessageSid": f"SMrace{index:04d}", "From": PHONE, "To": "+15005550006", "Body": f"ACCEPT {code}"}
        http = app.test_client()
        go()
        response = http.post("/sms/inbound", data=params,
                             headers={"X-Twilio-Signature": _sign(app, "/sms/inbound", params)})
        return "sms", response.status_code, response.get_data(as_text=True)

    results = run_together(RACERS, race, timeout=180)

    server_errors = [(channel, status) for channel, status, _ in results if status >= 500]
    assert server_errors == [], server_errors
    web = [(status, page) for channel, status, page in results if channel == "web"]
    assert {status for status, _ in web} <= {302, 409}
    assert all("already answered" in page for status, page in web if status == 409)
    assert all(status == 200 for channel, status, _ in results if channel == "sms")
    with app.app_context():
        sms_results = [r.result for r in db.session.scalars(select(InboundMessage))]
        target = db.session.get(ReferralTarget, target_id)
        accepted_events = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "target.accepted"))
        replies = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.idempotency_key.like("inbound:SMrace%")))
        assert target.status == TargetStatus.accepted
    winners = sum(1 for status, _ in web if status == 302) + sms_results.count(InboundResult.applied)
    assert winners == 1
    assert accepted_events == 1
    assert len(sms_results) == RACERS // 2
    assert sorted(r.value for r in sms_results if r != InboundResult.applied) == (
        ["already_answered"] * (RACERS // 2 - sms_results.count(InboundResult.applied)))
    assert replies == RACERS // 2  # every SMS got its answer: accepted, or already answered
    assert target.response_channel in ("web", "sms")
