"""The whole loop through the pages, with the console SMS gateway, as a person would try it in
the browser: a referral sends SMS, a reply from the simulated phone accepts it, another phone
declines, the caseworker sees both and is offered what to do next; silence escalates when the
clock moves. The worker runs through its real command (``flask worker --once``)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.core.db import clock_moved
from app.extensions import db
from app.referrals.models import Referral, ReferralTarget
from app.sms.models import OutboxMessage, OutboxStatus
from tests import factories
from tests.inbox.test_inbox import _sent_referral

SPARE_PHONES = ["+48600100001", "+380501112233"]


def _worker(app) -> str:
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def _give_phones(app, target_ids) -> tuple[list[str], list[str], str]:
    """Each target's service's SMS phone (one is given where the demo data has none): (codes,
    phones, an admin's email)."""
    from app.sms.services import queue_new_referral

    with app.app_context():
        codes, phones = [], []
        for target_id, spare in zip(target_ids, SPARE_PHONES, strict=True):
            target = db.session.get(ReferralTarget, target_id)
            if not target.service.sms_phone:
                target.service.sms_phone, target.service.sms_locale = spare, "uk"
                queue_new_referral(target)
            codes.append(target.code)
            phones.append(target.service.sms_phone)
        admin = factories.user("admin")
        db.session.commit()
        return codes, phones, admin.email


def test_sms_out_replies_in_and_the_caseworker_sees_both(app, client, login_as):
    rid, target_ids = _sent_referral(app, client, login_as)
    (code_a, code_b), phones, admin = _give_phones(app, target_ids)
    assert "sent" in _worker(app)
    with app.app_context():
        sent = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient.in_(phones))).all()
        assert {m.status for m in sent} == {OutboxStatus.sent} and len(sent) >= 2

    client.login(admin)
    inbox = client.get("/dev/sms/").get_data(as_text=True)
    assert code_a in inbox and code_b in inbox
    client.post_form("/dev/sms/reply", {"phone": phones[0], "body": f"akceptuję {code_a.lower()}"})
    client.post_form("/dev/sms/reply", {"phone": phones[1], "body": f"ВІДХИЛЯЮ {code_b} немає місць"})
    _worker(app)  # the confirmations go out; the pathway sees the answers
    with app.app_context():
        replies = db.session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.like("inbound:%"))).all()
        assert {m.recipient for m in replies} == set(phones)
        assert {m.status for m in replies} == {OutboxStatus.sent}
        caseworker = db.session.get(Referral, rid).created_by.email
    client.post_form("/logout")

    client.login(caseworker)
    page = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Accepted" in page and "Declined" in page and "No capacity at the moment" in page
    assert "Needs your follow-up" in page or "What next?" in page
    assert re.search(rf'name="t{target_ids[1]}-choice"', page)  # the declined one gets a choice
    assert not re.search(rf'name="t{target_ids[0]}-choice"', page)
    notes = client.get("/notifications/").get_data(as_text=True)
    assert "accepted referral" in notes and "declined referral" in notes


def test_silence_escalates_when_the_clock_moves(app, client, login_as):
    rid, target_ids = _sent_referral(app, client, login_as)
    _codes, phones, _admin = _give_phones(app, target_ids)
    _worker(app)
    with app.app_context():
        target = db.session.get(ReferralTarget, target_ids[0])
        window = target.respond_by - target.sent_at
        caseworker = db.session.get(Referral, rid).created_by.email
    with clock_moved(window / 2 + timedelta(minutes=1)):
        _worker(app)
        with app.app_context():
            reminders = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
            assert {m.recipient for m in reminders} == set(phones)
            assert {m.status for m in reminders} == {OutboxStatus.sent}  # sent in the same run
    with clock_moved(window + timedelta(minutes=1)):
        _worker(app)
        client.login(caseworker)
        page = client.get(f"/referrals/{rid}").get_data(as_text=True)
        assert page.count("No response in time") >= 2 and "What next?" in page
        assert "did not answer referral" in client.get("/notifications/").get_data(as_text=True)
