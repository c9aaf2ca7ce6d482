"""TwilioGateway: the real twilio SDK against the fake Twilio server (no Flask app, no database)."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from app.sms.gateways import PermanentError, SendResult, TransientError, UnknownOutcome
from app.sms.twilio_gateway import TwilioGateway
from tests.sms.fake_twilio import FakeTwilio, fake_twilio  # noqa: F401  (fixture)

TO = "+447700900123"
BODY = "Pathways: you have a new referral. Reply STOP to opt out."


@pytest.fixture
def make_gateway(fake_twilio: FakeTwilio):  # noqa: F811
    made: list[TwilioGateway] = []

    def make(**overrides) -> TwilioGateway:
        gateway = TwilioGateway(fake_twilio.gateway_config(**overrides))
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


def test_send_posts_the_message_and_returns_the_sid(fake_twilio, make_gateway):  # noqa: F811
    result = make_gateway().send(TO, BODY, outbox_id=42)

    [received] = fake_twilio.messages
    assert result == SendResult(provider_id=received.sid, status="queued")
    assert received.sid.startswith("SM") and len(received.sid) == 34
    assert received.to == TO
    assert received.body == BODY
    assert received.from_ == fake_twilio.from_number
    assert received.messaging_service_sid is None
    assert received.status_callback == "https://pathways.example.org/sms/status?outbox=42"
    # The SDK built https://api.twilio.com/...; the override sent it to the fake's host.
    [(method, path)] = fake_twilio.requests
    assert (method, path) == ("POST", f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json")


def test_messaging_service_sid_is_used_instead_of_from(fake_twilio, make_gateway):  # noqa: F811
    service = "MG" + "a" * 32
    make_gateway(TWILIO_MESSAGING_SERVICE_SID=service, TWILIO_FROM_NUMBER=None).send(TO, BODY, outbox_id=1)

    [received] = fake_twilio.messages
    assert received.messaging_service_sid == service
    assert "From" not in received.form


def test_wrong_token_is_permanent(fake_twilio, make_gateway):  # noqa: F811
    with pytest.raises(PermanentError) as caught:
        make_gateway(TWILIO_AUTH_TOKEN="wrong").send(TO, BODY, outbox_id=1)
    assert caught.value.code == "20003"
    assert "401" in str(caught.value)
    assert fake_twilio.messages == []


def test_rate_limited_is_transient(fake_twilio, make_gateway):  # noqa: F811
    fake_twilio.fail_next(status=429, code=20429)
    gateway = make_gateway()
    with pytest.raises(TransientError) as caught:
        gateway.send(TO, BODY, outbox_id=1)
    assert caught.value.code == "20429"
    assert fake_twilio.messages == []
    # Only the planned response failed: the retry goes through.
    assert gateway.send(TO, BODY, outbox_id=1).provider_id == fake_twilio.messages[0].sid


@pytest.mark.parametrize("code", [21211, 21408, 21610, 21612, 21614])
def test_recipient_errors_are_permanent_with_their_code(fake_twilio, make_gateway, code):  # noqa: F811
    fake_twilio.fail_next(status=400, code=code, message=f"The 'To' number {TO} is not valid")
    with pytest.raises(PermanentError) as caught:
        make_gateway().send(TO, BODY, outbox_id=1)
    assert caught.value.code == str(code)
    assert TO not in str(caught.value)  # Twilio's text quotes the number: ours must not
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_other_4xx_is_permanent(fake_twilio, make_gateway):  # noqa: F811
    fake_twilio.fail_next(status=404, code=20404)
    with pytest.raises(PermanentError) as caught:
        make_gateway().send(TO, BODY, outbox_id=1)
    assert caught.value.code == "20404"


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_is_unknown_outcome(fake_twilio, make_gateway, status):  # noqa: F811
    fake_twilio.fail_next(status=status)
    with pytest.raises(UnknownOutcome):
        make_gateway().send(TO, BODY, outbox_id=1)


def test_read_timeout_is_unknown_outcome_and_reconcilable(fake_twilio, make_gateway):  # noqa: F811
    fake_twilio.delay_next(3)
    gateway = make_gateway()  # SMS_TIMEOUT_SECONDS = 0.5
    since = datetime.now(UTC) - timedelta(seconds=5)
    started = time.monotonic()
    with pytest.raises(UnknownOutcome) as caught:
        gateway.send(TO, BODY, outbox_id=7)
    assert time.monotonic() - started < 2
    assert caught.value.code == "timeout"
    # It was in fact accepted: reconciliation finds it.
    [received] = fake_twilio.messages
    assert [sid for sid, _, _ in gateway.recent_messages(TO, since)] == [received.sid]


def test_connection_dropped_after_sending_is_unknown_outcome(fake_twilio, make_gateway):  # noqa: F811
    fake_twilio.drop_next()
    with pytest.raises(UnknownOutcome) as caught:
        make_gateway().send(TO, BODY, outbox_id=1)
    assert caught.value.code == "connection"
    assert len(fake_twilio.messages) == 1


def test_connection_refused_is_transient(fake_twilio, make_gateway):  # noqa: F811
    gateway = make_gateway()
    fake_twilio.stop()
    with pytest.raises(TransientError) as caught:
        gateway.send(TO, BODY, outbox_id=1)
    assert caught.value.code == "connect"


def test_unused_port_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = TwilioGateway(FakeTwilio(account_sid="AC" + "0" * 32).gateway_config(
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(TransientError):
            gateway.send(TO, BODY, outbox_id=1)
    finally:
        gateway.close()


def test_recent_messages_lists_what_was_sent_across_pages(fake_twilio, make_gateway):  # noqa: F811
    gateway = make_gateway()
    since = datetime.now(UTC) - timedelta(minutes=1)
    sids = [gateway.send(TO, BODY, outbox_id=n).provider_id for n in range(3)]
    gateway.send("+447700900999", BODY, outbox_id=9)
    fake_twilio.max_page_size = 2  # the SDK follows next_page_uri, also through the override

    listed = gateway.recent_messages(TO, since)

    assert sorted(sid for sid, _, _ in listed) == sorted(sids)
    assert {status for _, status, _ in listed} == {"queued"}
    assert all(isinstance(created, datetime) and created >= since.replace(microsecond=0) for _, _, created in listed)
    gets = [path for method, path in fake_twilio.requests if method == "GET"]
    assert len(gets) == 2 and "Page=1" in gets[1]
    assert "DateSent%3E=" in gets[0]


def test_recent_messages_respects_since(fake_twilio, make_gateway):  # noqa: F811
    gateway = make_gateway()
    gateway.send(TO, BODY, outbox_id=1)
    assert gateway.recent_messages(TO, datetime.now(UTC) + timedelta(minutes=1)) == []


def test_recent_messages_errors(fake_twilio, make_gateway):  # noqa: F811
    gateway = make_gateway()
    fake_twilio.fail_next(status=500)
    with pytest.raises(TransientError):
        gateway.recent_messages(TO, datetime.now(UTC))
    fake_twilio.fail_next(status=403, code=20003)
    with pytest.raises(PermanentError) as caught:
        gateway.recent_messages(TO, datetime.now(UTC))
    assert caught.value.code == "20003"
    fake_twilio.fail_next(status=429, code=20429)
    with pytest.raises(TransientError):
        gateway.recent_messages(TO, datetime.now(UTC))


def test_logs_name_neither_number_nor_body(fake_twilio, make_gateway, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    gateway = make_gateway()
    gateway.send(TO, BODY, outbox_id=1)
    fake_twilio.fail_next(status=400, code=21211, message=f"The 'To' number {TO} is not valid")
    with pytest.raises(PermanentError):
        gateway.send(TO, BODY, outbox_id=2)
    gateway.recent_messages(TO, datetime.now(UTC) - timedelta(minutes=1))
    ours = [r for r in caplog.records if r.name.startswith(("app.", "twilio"))]
    assert ours
    text = "\n".join(r.getMessage() for r in ours)
    assert TO not in text and TO.replace("+", "%2B") not in text and BODY not in text


@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL"])
def test_incomplete_config_is_refused(missing):
    config = FakeTwilio(account_sid="AC" + "0" * 32).gateway_config(**{missing: None})
    with pytest.raises(ValueError, match=missing):
        TwilioGateway(config)


def test_a_sender_is_required():
    config = FakeTwilio(account_sid="AC" + "0" * 32).gateway_config(TWILIO_FROM_NUMBER="")
    with pytest.raises(ValueError, match="TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"):
        TwilioGateway(config)


def test_without_override_requests_go_to_twilio():
    gateway = TwilioGateway({**FakeTwilio().gateway_config(), "TWILIO_API_BASE_URL": None})
    try:
        url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?To=x"
        assert gateway.http_client.rewrite(url) == url
        assert gateway.timeout == 0.5
    finally:
        gateway.close()


def test_override_keeps_path_and_query():
    gateway = TwilioGateway(FakeTwilio().gateway_config(TWILIO_API_BASE_URL="http://127.0.0.1:9/prefix/"))
    try:
        assert (gateway.http_client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?Page=1")
                == "http://127.0.0.1:9/prefix/2010-04-01/Accounts/AC1/Messages.json?Page=1")
    finally:
        gateway.close()
