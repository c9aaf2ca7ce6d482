"""Configuration from the environment, and the refusal of unsafe production settings."""

import pytest

from app.config import ConfigError, load_config


def test_production_refuses_missing_or_weak_secret(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/pathways")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"PATHWAYS_ENV": "production"})
    monkeypatch.setenv("SECRET_KEY", "changeme")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"PATHWAYS_ENV": "production"})


def test_production_refuses_debug(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/pathways")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    with pytest.raises(ConfigError, match="debug"):
        load_config({"PATHWAYS_ENV": "production", "DEBUG": True})


def test_production_accepts_strong_settings(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/pathways")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    config = load_config({"PATHWAYS_ENV": "production"})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db.example/pathways"
    assert config["SESSION_COOKIE_SECURE"] is True


def test_development_generates_a_stable_per_checkout_secret(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config()["SECRET_KEY"]
    assert len(first) >= 32
    assert load_config()["SECRET_KEY"] == first


def test_defaults_and_environment(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DEFAULT_LOCALE", "es")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://pathways.example.org/")
    config = load_config()
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert config["SQLALCHEMY_DATABASE_URI"].endswith("instance/pathways.db")
    assert config["BABEL_DEFAULT_LOCALE"] == "es"
    assert config["PUBLIC_BASE_URL"] == "https://pathways.example.org"


def test_unsupported_default_locale_is_refused(monkeypatch):
    monkeypatch.setenv("DEFAULT_LOCALE", "fr")
    with pytest.raises(ConfigError, match="DEFAULT_LOCALE"):
        load_config()


def test_twilio_backend_needs_its_credentials(monkeypatch):
    monkeypatch.setenv("SMS_BACKEND", "twilio")
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        load_config()
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15005550006")
    assert load_config()["SMS_BACKEND"] == "twilio"
