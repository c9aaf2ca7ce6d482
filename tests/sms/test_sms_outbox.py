"""The SMS outbox: idempotent queueing, a new-referral message per target with a phone, in
the service's language, with no personal data, and never longer than two segments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask_babel import force_locale, format_datetime
from sqlalchemy import func, select

from app.directory.models import Service
from app.extensions import db
from app.referrals.models import Referral, ReferralTarget
from app.sms.models import OutboxMessage, OutboxStatus
from app.sms.services import queue_message, render_new_referral_sms, segments
from tests.referrals.helpers import submit
from tests.referrals.test_protection_referrals import (
    ADULT,
    INTAKE,
    _offered,
    _ok,
    _setup,
    _start,
    _walk_to_selection,
)


def test_queueing_twice_with_one_key_gives_one_message(app_ctx):
    first = queue_message("target:1:new", "+48600000001", "pl", "Hello")
    db.session.commit()
    again = queue_message("target:1:new", "+48600000001", "pl", "Hello again")
    db.session.commit()
    assert again.id == first.id
    assert again.body == "Hello" and again.status == OutboxStatus.queued and again.attempts == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert queue_message("target:2:new", "", "en", "No phone") is None


def test_queueing_never_commits(app, app_ctx):
    queue_message("k", "+48600000001", "pl", "Hello")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_sent_referral_queues_one_sms_per_target_with_a_phone(app, client, login_as):
    _setup(app)
    login_as("caseworker")
    rid = _start(client, "gbv_referral")
    page = _walk_to_selection(client, rid)
    chosen = [int(i) for i in _offered(page)[:2]]
    with app.app_context():
        first, second = (db.session.get(Service, i) for i in chosen)
        first.sms_phone, first.sms_locale = "+380501234567", "uk"
        second.sms_phone = None
        db.session.commit()
    _ok(submit(client, rid, {"chosen_services": [str(i) for i in chosen]}, page_html=page))
    _ok(submit(client, rid, {"confirm_send": "yes"}))
    with app.app_context():
        targets = {t.service_id: t for t in db.session.get(Referral, rid).targets}
        (message,) = db.session.scalars(select(OutboxMessage)).all()
        target = targets[chosen[0]]
        assert message.target_id == target.id
        assert message.idempotency_key == f"target:{target.id}:new"
        assert message.recipient == "+380501234567" and message.locale == "uk"
        assert message.status == OutboxStatus.queued
        body = message.body
        assert target.code in body
        assert f"ACCEPT {target.code}" in body and f"DECLINE {target.code}" in body
        assert body.endswith(f"/inbox/{target.id}")
        with force_locale("uk"):  # the deadline as a Ukrainian reader writes it
            assert format_datetime(target.respond_by, "short").replace("\u202f", " ") in body
        assert segments(body) <= 2
    answers = [*ADULT.values(), *INTAKE.values(), "Ana", "GBV-77", "safe place", "29"]
    for value in answers:
        if isinstance(value, str) and len(value) > 2:
            assert value not in body, value


@pytest.mark.parametrize("locale", ["en", "es", "pl", "uk"])
@pytest.mark.parametrize("service_type", ["family_tracing", "legal_aid", "clinical_management_of_rape"])
def test_every_message_fits_two_segments(app_ctx, locale, service_type):
    service = Service(service_type=service_type, sms_locale=locale, sms_phone="+10000000000")
    target = ReferralTarget(id=99_999_999, code="K7M2QX", urgency="emergency",
                            respond_by=datetime(2026, 12, 31, 23, 59, tzinfo=UTC), service=service)
    rendered_locale, body = render_new_referral_sms(target)
    assert rendered_locale == locale
    assert segments(body) <= 2, (locale, len(body), body)
    assert "ACCEPT K7M2QX" in body and "DECLINE K7M2QX" in body and body.endswith("/inbox/99999999")


def test_the_service_type_is_written_in_the_recipients_language(app_ctx):
    from app.directory.taxonomy import SERVICE_TYPES

    service = Service(service_type="health", sms_locale="es", sms_phone="+584120001234")
    target = ReferralTarget(id=7, code="K7M2QX", urgency="normal", respond_by=None, service=service)
    _locale, body = render_new_referral_sms(target)
    with force_locale("es"):
        assert str(SERVICE_TYPES["health"]) == "Atención en salud"
    assert "Atencion en salud" in body  # without the accent GSM-7 lacks: 160 characters a segment


def test_segments():
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("a" * 306) == 2
    assert segments("a" * 307) == 3
    assert segments("€" * 80) == 1  # the extension characters take two septets
    assert segments("€" * 81) == 2
    assert segments("ł" * 70) == 1  # not GSM-7: UCS-2
    assert segments("ł" * 71) == 2
    assert segments("Привіт" * 22 + "ab") == 2  # 134 units
    assert segments("Привіт" * 22 + "abc") == 3
