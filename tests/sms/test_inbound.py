"""SMS replies on Twilio's webhook (POST /sms/inbound) and delivery status callbacks
(POST /sms/status): signature, deduplication, the registered number only, one answer wins,
replies through the outbox, never a 5xx."""

from __future__ import annotations

import logging
import random
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from app.audit.models import AuditEvent
from app.extensions import db
from app.referrals.models import ReferralTarget, TargetStatus
from app.sms.models import InboundMessage, InboundResult, OutboxMessage, OutboxStatus
from app.sms.routes import EMPTY_TWIML
from app.sms.services import queue_message
from tests.concurrency import run_together
from tests.inbox.test_inbox import _sent_referral

TOKEN = "test-auth-token-0123456789"
PHONE = "+48600000001"
OTHER_PHONE = "+48600000999"


@pytest.fixture
def signed(app, monkeypatch):
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", TOKEN)


def _sign(app, path: str, params: dict, query: str = "") -> str:
    url = app.config["PUBLIC_BASE_URL"] + path + (f"?{query}" if query else "")
    return RequestValidator(TOKEN).compute_signature(url, params)


def _post(app, client, params: dict, *, path="/sms/inbound", query="", signature=None):
    headers = {"X-Twilio-Signature": signature if signature is not None else _sign(app, path, params, query)}
    return client.http.post(path + (f"?{query}" if query else ""), data=params, headers=headers)


def _sms(app, client, body: str, sid: str = "SM" + "1" * 32, sender: str = PHONE):
    response = _post(app, client, {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": body})
    assert response.status_code == 200, response.status_code
    assert response.get_data(as_text=True) == EMPTY_TWIML
    assert response.content_type.startswith("text/xml")
    return response


def _target(app, client, login_as, locale="en") -> tuple[int, str]:
    """A sent referral's first target, whose service texts from PHONE in ``locale``."""
    _rid, (target_id, _other) = _sent_referral(app, client, login_as)
    with app.app_context():
        target = db.session.get(ReferralTarget, target_id)
        target.service.sms_phone, target.service.sms_locale = PHONE, locale
        db.session.commit()
        return target_id, target.code


def _replies(app) -> list[OutboxMessage]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.like("inbound:%"))
                                  .order_by(OutboxMessage.id)).all()
        db.session.expunge_all()
        return rows


def _inbound(app) -> list[InboundMessage]:
    with app.app_context():
        rows = db.session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        db.session.expunge_all()
        return rows


def _state(app, target_id):
    with app.app_context():
        t = db.session.get(ReferralTarget, target_id)
        return t.status, t.response_channel, t.responded_by_id, t.decline_reason, t.response_note


def test_accept_by_sms(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    _sms(app, client, f"accept {code.lower()}", sid="SMaccept1")
    assert _state(app, target_id) == (TargetStatus.accepted, "sms", None, None, None)
    [reply] = _replies(app)
    assert reply.idempotency_key == "inbound:SMaccept1:reply"
    assert (reply.recipient, reply.locale, reply.target_id) == (PHONE, "en", target_id)
    assert code in reply.body and "accepted" in reply.body and f"/inbox/{target_id}" in reply.body
    assert "Ana" not in reply.body  # no personal data
    [row] = _inbound(app)
    assert (row.message_sid, row.result, row.target_id) == ("SMaccept1", InboundResult.applied, target_id)
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "target.accepted"))
        assert event.user_id is None and event.detail["target"] == code


def test_decline_with_reason_in_the_services_language(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as, locale="es")
    _sms(app, client, f"¡Rechazo {code}, LLENO hasta junio!")
    assert _state(app, target_id) == (TargetStatus.declined, "sms", None, "no_capacity", "hasta junio!")
    [reply] = _replies(app)
    assert reply.locale == "es" and code in reply.body


def test_decline_other_reason_keeps_the_note(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as, locale="uk")
    _sms(app, client, f"ВІДХИЛЯЮ {code} тільки діти")
    assert _state(app, target_id) == (TargetStatus.declined, "sms", None, "other", "тільки діти")


def test_a_duplicate_message_sid_changes_nothing(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    _sms(app, client, f"ACCEPT {code}", sid="SMdup")
    _sms(app, client, f"DECLINE {code} FULL", sid="SMdup")  # redelivered (even with another text)
    _sms(app, client, f"ACCEPT {code}", sid="SMdup")
    assert _state(app, target_id)[0] == TargetStatus.accepted
    assert len(_replies(app)) == 1
    assert [r.result for r in _inbound(app)] == [InboundResult.applied]


def test_only_the_registered_number_may_answer(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    _sms(app, client, f"ACCEPT {code}", sender=OTHER_PHONE)
    assert _state(app, target_id)[0] == TargetStatus.pending
    [reply] = _replies(app)
    assert reply.recipient == OTHER_PHONE and "not registered" in reply.body and code in reply.body
    assert reply.target_id is None
    assert _inbound(app)[0].result == InboundResult.wrong_number


def test_the_registered_number_in_another_spelling(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    _sms(app, client, f"ACCEPT {code}", sender="+48 600 000 001")
    assert _state(app, target_id)[0] == TargetStatus.accepted


def test_second_answer_is_already_answered(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    _sms(app, client, f"ACCEPT {code}", sid="SM1")
    _sms(app, client, f"DECLINE {code}", sid="SM2")
    assert _state(app, target_id)[0] == TargetStatus.accepted
    first, second = _replies(app)
    assert "already answered" in second.body
    assert [r.result for r in _inbound(app)] == [InboundResult.applied, InboundResult.already_answered]


def test_late_answer(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    with app.app_context():
        db.session.get(ReferralTarget, target_id).status = TargetStatus.no_response
        db.session.commit()
    _sms(app, client, f"ACCEPT {code}")
    assert _state(app, target_id)[0] == TargetStatus.no_response
    assert "already answered" in _replies(app)[0].body
    assert _inbound(app)[0].result == InboundResult.late


@pytest.mark.parametrize("text,result", [
    ("ACCEPT ZZZZZZ", InboundResult.unknown_code),
    ("hello?", InboundResult.not_understood),
    ("ACCEPT", InboundResult.not_understood),
    ("", InboundResult.not_understood),
])
def test_help_for_what_is_not_understood(app, client, login_as, signed, text, result):
    _target(app, client, login_as, locale="pl")
    _sms(app, client, text)
    [reply] = _replies(app)
    assert reply.locale == "pl"  # the sender's service's language
    assert "ACCEPT" in reply.body and "DECLINE" in reply.body
    assert _inbound(app)[0].result == result


def test_help_in_the_default_language_for_a_stranger(app, client, signed):
    _sms(app, client, "hola", sender=OTHER_PHONE)
    [reply] = _replies(app)
    assert reply.locale == app.config["BABEL_DEFAULT_LOCALE"]


def test_stop_is_recorded_and_not_answered(app, client, login_as, signed):
    target_id, _code = _target(app, client, login_as)
    _sms(app, client, "STOP")
    assert _replies(app) == []
    assert _inbound(app)[0].result == InboundResult.opted_out
    assert _state(app, target_id)[0] == TargetStatus.pending


def test_blocked_target_is_an_unknown_code(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    with app.app_context():
        db.session.get(ReferralTarget, target_id).status = TargetStatus.blocked
        db.session.commit()
    _sms(app, client, f"ACCEPT {code}")
    assert _inbound(app)[0].result == InboundResult.unknown_code


# -- the signature -----------------------------------------------------------------------

PARAMS = {"MessageSid": "SMsig", "From": PHONE, "Body": "hello"}


def test_signature_required(app, client, signed):
    assert client.http.post("/sms/inbound", data=PARAMS).status_code == 403
    assert _post(app, client, PARAMS, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    assert _post(app, client, PARAMS, signature="").status_code == 403
    assert _post(app, client, PARAMS, signature="\u00e9\u0000").status_code == 403
    other = RequestValidator("another-token").compute_signature(
        app.config["PUBLIC_BASE_URL"] + "/sms/inbound", PARAMS)
    assert _post(app, client, PARAMS, signature=other).status_code == 403
    # signed for other parameters, or another URL
    tampered = _sign(app, "/sms/inbound", {**PARAMS, "Body": "ACCEPT"})
    assert _post(app, client, PARAMS, signature=tampered).status_code == 403
    assert _post(app, client, PARAMS, signature=_sign(app, "/sms/status", PARAMS)).status_code == 403
    assert _inbound(app) == []
    assert _post(app, client, PARAMS).status_code == 200


def test_signature_covers_the_query_string(app, client, signed):
    good = _sign(app, "/sms/inbound", PARAMS, query="a=1")
    assert _post(app, client, PARAMS, query="a=1", signature=good).status_code == 200
    assert _post(app, client, PARAMS, query="a=2", signature=good).status_code == 403


@pytest.mark.parametrize("backend", ["twilio", "console"])
def test_no_auth_token_no_webhook(app, client, monkeypatch, backend):
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", None)
    monkeypatch.setitem(app.config, "SMS_BACKEND", backend)
    assert _post(app, client, PARAMS).status_code == 403
    assert _inbound(app) == []


def test_missing_fields_are_a_400(app, client, signed):
    assert _post(app, client, {"From": PHONE, "Body": "x"}).status_code == 400
    assert _post(app, client, {"MessageSid": "SMx", "Body": "x"}).status_code == 400
    assert _post(app, client, {"MessageSid": "SM x/../", "From": PHONE}).status_code == 400
    assert _post(app, client, {}).status_code == 400


def test_no_csrf_token_needed_but_get_is_not_allowed(app, client, signed):
    assert client.http.get("/sms/inbound").status_code in (403, 405)


def test_random_bodies_never_a_server_error(app, client, login_as, signed):
    _target(app, client, login_as)
    rng = random.Random(4)
    statuses = set()
    for i in range(1000):
        kind = i % 4
        if kind == 0:  # random bytes, unsigned
            raw = rng.randbytes(rng.randint(0, 3000))
            response = client.http.post("/sms/inbound", data=raw, content_type=rng.choice(
                ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]),
                headers={"X-Twilio-Signature": raw[:20].hex()})
        elif kind == 1:  # random bytes as a form, signed over what Flask parses
            raw = rng.randbytes(rng.randint(0, 3000))
            with app.test_request_context("/sms/inbound", method="POST", data=raw,
                                          content_type="application/x-www-form-urlencoded"):
                from flask import request

                signature = RequestValidator(TOKEN).compute_signature(
                    app.config["PUBLIC_BASE_URL"] + "/sms/inbound", request.form)
            response = client.http.post("/sms/inbound", data=raw, headers={"X-Twilio-Signature": signature},
                                        content_type="application/x-www-form-urlencoded")
        else:  # signed forms with random (or missing, huge, NUL-laden) fields
            alphabet = "ACEPT DCLINSOЙЇ\x00\x01💥%&=+" + "23456789ABCDEFGHJKMNPQRSTVWXYZ"
            params = {}
            for name in ("MessageSid", "From", "To", "Body", "SmsSid", "NumMedia"):
                if rng.random() < 0.7:
                    size = rng.choice([0, 1, 6, 40, 70, 2000, 20000 if kind == 3 else 10])
                    params[name] = "".join(rng.choice(alphabet) for _ in range(size))
            if rng.random() < 0.5:
                params["From"] = rng.choice([PHONE, OTHER_PHONE, "+1", "00486000000001"])
            if rng.random() < 0.5:
                params["MessageSid"] = f"SMfuzz{i}"
            if rng.random() < 0.2:  # the words that change state: opt-out, opt-in, answers
                params["Body"] = rng.choice(["STOP", "START", "yes", "СТОП", "ACCEPT", "DECLINE x FULL"])
            response = _post(app, client, params)
        statuses.add(response.status_code)
        assert response.status_code < 500, (i, response.status_code)
    assert 200 in statuses and 403 in statuses


def test_huge_body_is_refused(app, client, signed):
    params = {**PARAMS, "Body": "A" * 200_000}
    assert _post(app, client, params).status_code == 413


def test_same_message_sid_at_once_one_answer_one_reply(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    racers = 10
    params = {"MessageSid": "SMrace", "From": PHONE, "Body": f"ACCEPT {code}"}
    body = urlencode(params)
    signature = _sign(app, "/sms/inbound", params)

    def race(_index, go):
        http = app.test_client()
        go()
        return http.post("/sms/inbound", data=body, headers={"X-Twilio-Signature": signature},
                         content_type="application/x-www-form-urlencoded").status_code

    statuses = run_together(racers, race)
    assert statuses == [200] * racers
    assert _state(app, target_id)[0] == TargetStatus.accepted
    assert len(_replies(app)) == 1 and len(_inbound(app)) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "target.accepted")) == 1


def test_different_messages_at_once_one_answer(app, client, login_as, signed):
    target_id, code = _target(app, client, login_as)
    racers = 8

    def race(i, go):
        params = {"MessageSid": f"SMrace{i}", "From": PHONE,
                  "Body": f"ACCEPT {code}" if i % 2 else f"DECLINE {code} FULL"}
        http = app.test_client()
        go()
        assert http.post("/sms/inbound", data=params,
                         headers={"X-Twilio-Signature": _sign(app, "/sms/inbound", params)}).status_code == 200

    run_together(racers, race)
    results = sorted(r.result.value for r in _inbound(app))
    assert results == ["already_answered"] * (racers - 1) + ["applied"]
    assert len(_replies(app)) == racers


def test_logs_have_no_number_and_no_text(app, client, login_as, signed, caplog):
    _target_id, code = _target(app, client, login_as)
    caplog.set_level(logging.DEBUG)
    _sms(app, client, f"DECLINE {code} secret note", sid="SMlog1")
    _sms(app, client, "some private words", sid="SMlog2", sender=OTHER_PHONE)
    _post(app, client, PARAMS, signature="wrong")
    text = caplog.text
    assert "secret note" not in text and "private words" not in text
    assert "600000001" not in text and "600000999" not in text


# -- the development page ----------------------------------------------------------------

def test_dev_page_replies_as_a_phone(app, client, login_as):
    target_id, code = _target(app, client, login_as)
    login_as("admin")
    page = client.get("/dev/sms/").get_data(as_text=True)
    assert "Reply as this phone" in page and 'name="phone"' in page
    response = client.post_form("/dev/sms/reply", {"phone": PHONE, "body": f"ACCEPT {code}"})
    assert response.status_code == 302
    assert _state(app, target_id)[0] == TargetStatus.accepted
    assert "accepted" in client.get("/dev/sms/").get_data(as_text=True)
    assert client.post_form("/dev/sms/reply", {"phone": "nope", "body": "x"}).status_code == 400


def test_dev_reply_only_for_admins(app, client, login_as):
    login_as("caseworker")
    assert client.post_form("/dev/sms/reply", {"phone": PHONE, "body": "STOP"}).status_code == 403
    assert _inbound(app) == []


# -- delivery status callbacks ------------------------------------------------------------

def _outbox(app, status=OutboxStatus.sent, provider_id="SMout1") -> int:
    with app.app_context():
        message = queue_message("k1", PHONE, "en", "hello")
        message.status, message.provider_id = status, provider_id
        db.session.commit()
        return message.id


def _callback(app, client, outbox_id, status, **extra):
    params = {"MessageSid": "SMout1", "MessageStatus": status, **extra}
    return _post(app, client, params, path="/sms/status", query=f"outbox={outbox_id}")


def _outbox_state(app, outbox_id):
    with app.app_context():
        m = db.session.get(OutboxMessage, outbox_id)
        return m.status, m.error_code


def test_status_moves_forward_only(app, client, signed):
    outbox_id = _outbox(app)
    assert _callback(app, client, outbox_id, "sent").status_code == 204
    assert _outbox_state(app, outbox_id) == (OutboxStatus.sent, None)
    assert _callback(app, client, outbox_id, "delivered").status_code == 204
    assert _outbox_state(app, outbox_id) == (OutboxStatus.delivered, None)
    for late in ("sent", "queued", "sending", "failed", "undelivered"):
        _callback(app, client, outbox_id, late, ErrorCode="30003")
        assert _outbox_state(app, outbox_id) == (OutboxStatus.delivered, None)


@pytest.mark.parametrize("status,code", [("undelivered", "30003"), ("failed", "30006"), ("undelivered", None)])
def test_failed_is_terminal_with_its_error_code(app, client, signed, status, code):
    outbox_id = _outbox(app)
    extra = {"ErrorCode": code} if code else {}
    _callback(app, client, outbox_id, status, **extra)
    assert _outbox_state(app, outbox_id) == (OutboxStatus.failed, code or "undelivered")
    _callback(app, client, outbox_id, "delivered")
    assert _outbox_state(app, outbox_id)[0] == OutboxStatus.failed


def test_status_from_unknown_and_sending(app, client, signed):
    unknown = _outbox(app, status=OutboxStatus.unknown)
    _callback(app, client, unknown, "delivered")
    assert _outbox_state(app, unknown)[0] == OutboxStatus.delivered


def test_status_for_another_message_sid_is_ignored(app, client, signed):
    outbox_id = _outbox(app, provider_id="SMother")
    _callback(app, client, outbox_id, "delivered")
    assert _outbox_state(app, outbox_id)[0] == OutboxStatus.sent


def test_status_callback_needs_signature_and_outbox(app, client, signed):
    outbox_id = _outbox(app)
    params = {"MessageSid": "SMout1", "MessageStatus": "delivered"}
    assert client.http.post(f"/sms/status?outbox={outbox_id}", data=params).status_code == 403
    assert _post(app, client, params, path="/sms/status", query=f"outbox={outbox_id}",
                 signature=_sign(app, "/sms/status", params)).status_code == 403  # signed without the query
    assert _post(app, client, params, path="/sms/status").status_code == 400
    assert _post(app, client, params, path="/sms/status", query="outbox=x1").status_code == 400
    assert _post(app, client, params, path="/sms/status", query="outbox=99999").status_code == 204
    assert _callback(app, client, outbox_id, "nonsense").status_code == 204
    assert _outbox_state(app, outbox_id)[0] == OutboxStatus.sent
