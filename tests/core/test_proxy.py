"""Behind a TLS proxy: ``PROXY_FIX_HOPS`` proxies are trusted for exactly that many
``X-Forwarded-*`` values — never more, and none by default. Twilio's signatures are checked
against ``PUBLIC_BASE_URL``, so forwarded headers can neither break nor forge them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app import _trust_proxies
from app.auth.models import LoginAttempt
from app.config import ConfigError, load_config
from app.extensions import db

PROXY_SAW = "198.51.100.7"
CLIENT_CLAIMS = "203.0.113.66"
TOKEN = "proxy-test-auth-token"
PUBLIC = "https://pathways.example.org"


@pytest.fixture
def behind(app):
    """``behind(hops)``: the session's app as ``create_app`` sets it up for ``hops`` proxies."""
    wsgi_app, hops = app.wsgi_app, app.config["PROXY_FIX_HOPS"]

    def _behind(count: int) -> None:
        app.wsgi_app = wsgi_app
        app.config["PROXY_FIX_HOPS"] = count
        _trust_proxies(app)

    yield _behind
    app.wsgi_app, app.config["PROXY_FIX_HOPS"] = wsgi_app, hops


def _failed_login_address(app, client, headers: dict) -> str:
    token = client.csrf_token()
    response = client.http.post("/login", data={"email": "nobody@example.test", "password": "wrong password",
                                                "csrf_token": token}, headers=headers)
    assert response.status_code == 401
    with app.app_context():
        address = db.session.scalars(select(LoginAttempt.address).order_by(LoginAttempt.id.desc())).first()
        db.session.remove()
    return address


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "6", "²", " ", "true"])
def test_proxy_hops_must_be_a_small_whole_number(monkeypatch, value):
    monkeypatch.setenv("PROXY_FIX_HOPS", value)
    with pytest.raises(ConfigError, match="PROXY_FIX_HOPS"):
        load_config()
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/pathways")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    with pytest.raises(ConfigError, match="PROXY_FIX_HOPS"):
        load_config({"PATHWAYS_ENV": "production"})


def test_proxy_hops_default_to_none(monkeypatch):
    monkeypatch.delenv("PROXY_FIX_HOPS", raising=False)
    assert load_config()["PROXY_FIX_HOPS"] == 0
    monkeypatch.setenv("PROXY_FIX_HOPS", " 2 ")
    assert load_config()["PROXY_FIX_HOPS"] == 2


def test_without_a_proxy_forwarded_headers_are_ignored(app, client, behind):
    behind(0)
    headers = {"X-Forwarded-For": PROXY_SAW}
    assert _failed_login_address(app, client, headers) == "127.0.0.1"


def test_one_hop_trusts_the_address_the_proxy_saw_not_the_clients_claim(app, client, behind):
    behind(1)
    headers = {"X-Forwarded-For": f"{CLIENT_CLAIMS}, {PROXY_SAW}"}
    assert _failed_login_address(app, client, headers) == PROXY_SAW


def test_more_hops_than_the_header_holds_are_not_trusted(app, client, behind):
    behind(2)
    headers = {"X-Forwarded-For": PROXY_SAW}  # one value for two proxies: someone skipped one
    assert _failed_login_address(app, client, headers) == "127.0.0.1"


def test_forwarded_https_makes_forms_check_the_referrer_against_the_forwarded_host(app, client, behind):
    behind(1)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pathways.example.org", "X-Forwarded-Port": "443"}
    token = client.csrf_token()
    data = {"email": "nobody@example.test", "password": "wrong password", "csrf_token": token}
    same_site = client.http.post("/login", data=data, headers={**forwarded, "Referer": f"{PUBLIC}/login"})
    assert same_site.status_code == 401  # the form was accepted; the password was not
    no_referrer = client.http.post("/login", data=data, headers=forwarded)
    assert no_referrer.status_code == 400  # HTTPS (as forwarded): the referrer is required
    behind(0)
    plain = client.http.post("/login", data=data, headers=forwarded)
    assert plain.status_code == 401  # no proxy trusted: plain HTTP, no referrer check


def test_twilio_signatures_use_the_public_address_whatever_is_forwarded(app, client, behind, monkeypatch):
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    behind(1)
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    path = "/sms/status?outbox=424242"

    def post(signed_url: str, host: str) -> int:
        signature = RequestValidator(TOKEN).compute_signature(signed_url, params)
        headers = {"X-Twilio-Signature": signature, "X-Forwarded-Proto": "https", "X-Forwarded-Host": host,
                   "X-Forwarded-For": PROXY_SAW}
        return client.http.post(path, data=params, headers=headers).status_code

    assert post(PUBLIC + path, "pathways.example.org") == 204
    assert post(PUBLIC + path, "elsewhere.example") == 204  # a forwarded host changes nothing
    assert post("https://elsewhere.example" + path, "elsewhere.example") == 403  # nor can it be signed for
