"""Settings, read from environment variables in one place.

Every variable is documented in the README. Production refuses unsafe settings: it will
not start without a strong ``SECRET_KEY`` and never runs with debug on.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = BASE_DIR / "instance"

SUPPORTED_LOCALES = ("en", "es", "pl", "uk")
#: More proxies than this in front of the app is a mistake, not a deployment.
MAX_PROXY_HOPS = 5
WEAK_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "pathways"}


class ConfigError(RuntimeError):
    """Raised when the configuration is unsafe or inconsistent."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _dev_secret_key() -> str:
    """A per-checkout secret for development, kept in instance/ (never in production)."""
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask config from the environment, then apply ``overrides`` (tests)."""
    env = os.environ
    overrides = dict(overrides or {})
    environment = overrides.get("PATHWAYS_ENV", env.get("PATHWAYS_ENV", "development"))
    INSTANCE_DIR.mkdir(exist_ok=True)
    config: dict = {
        "PATHWAYS_ENV": environment,
        "SQLALCHEMY_DATABASE_URI": _database_url(env.get("DATABASE_URL")),
        "SECRET_KEY": env.get("SECRET_KEY"),
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "BABEL_DEFAULT_LOCALE": env.get("DEFAULT_LOCALE", "en"),
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "BABEL_TRANSLATION_DIRECTORIES": str(BASE_DIR / "translations"),
        "SUPPORTED_LOCALES": SUPPORTED_LOCALES,
        "WORKFLOWS_DIR": env.get("WORKFLOWS_DIR", str(BASE_DIR / "workflows")),
        "FORMS_DIR": env.get("FORMS_DIR", str(BASE_DIR / "forms")),
        "DEMO_PASSWORD": env.get("DEMO_PASSWORD", "pathways-demo"),
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": int(env.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", "5")),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": int(env.get("LOGIN_MAX_FAILURES_PER_ADDRESS", "20")),
        "LOGIN_THROTTLE_MINUTES": int(env.get("LOGIN_THROTTLE_MINUTES", "15")),
        "SESSION_LIFETIME_HOURS": int(env.get("SESSION_LIFETIME_HOURS", "12")),
        "SMS_BACKEND": env.get("SMS_BACKEND", "console"),
        "SMS_MAX_ATTEMPTS": int(env.get("SMS_MAX_ATTEMPTS", "8")),
        "SMS_LEASE_SECONDS": int(env.get("SMS_LEASE_SECONDS", "300")),
        "SMS_RECONCILE_AFTER_SECONDS": int(env.get("SMS_RECONCILE_AFTER_SECONDS", "60")),
        "SMS_TIMEOUT_SECONDS": float(env.get("SMS_TIMEOUT_SECONDS", "10")),
        "PATHWAY_MAX_FILE_BYTES": int(env.get("PATHWAY_MAX_FILE_BYTES", str(1024 * 1024))),
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID"),
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN"),
        "TWILIO_FROM_NUMBER": env.get("TWILIO_FROM_NUMBER"),
        "TWILIO_MESSAGING_SERVICE_SID": env.get("TWILIO_MESSAGING_SERVICE_SID"),
        "TWILIO_API_BASE_URL": env.get("TWILIO_API_BASE_URL"),
        "PROXY_FIX_HOPS": env.get("PROXY_FIX_HOPS", "0"),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "DEBUG": False,
        "TESTING": False,
    }
    config.update(overrides)
    config["PROXY_FIX_HOPS"] = _proxy_hops(config["PROXY_FIX_HOPS"])
    config["SQLALCHEMY_DATABASE_URI"] = _database_url(config["SQLALCHEMY_DATABASE_URI"])
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    production = config["PATHWAYS_ENV"] == "production"
    config["SESSION_COOKIE_SECURE"] = production or config["PUBLIC_BASE_URL"].startswith("https")
    if production:
        _check_production(config, env)
    elif not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _dev_secret_key()
    if config["SMS_BACKEND"] not in ("console", "twilio"):
        raise ConfigError("SMS_BACKEND must be 'console' or 'twilio'")
    if config["SMS_BACKEND"] == "twilio":
        missing = [k for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not config.get(k)]
        if not (config.get("TWILIO_FROM_NUMBER") or config.get("TWILIO_MESSAGING_SERVICE_SID")):
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if missing:
            raise ConfigError("SMS_BACKEND=twilio needs " + ", ".join(missing))
    if config["BABEL_DEFAULT_LOCALE"] not in SUPPORTED_LOCALES:
        raise ConfigError(f"DEFAULT_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}")
    return config


def _database_url(url: str | None) -> str:
    if not url:
        return f"sqlite:///{INSTANCE_DIR / 'pathways.db'}"
    # psycopg 3 is the PostgreSQL driver; accept the plain URL forms people paste.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _proxy_hops(value) -> int:
    """How many proxies in front of the app set ``X-Forwarded-*`` (0: none, trust no such header)."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_PROXY_HOPS:
        raise ConfigError(f"PROXY_FIX_HOPS must be a whole number from 0 to {MAX_PROXY_HOPS} "
                          f"(the number of proxies in front of the app), not {value!r}")
    return int(text)


def _check_production(config: dict, env) -> None:
    key = config.get("SECRET_KEY") or ""
    if key.lower() in WEAK_SECRETS or len(key) < 32:
        raise ConfigError(
            "SECRET_KEY must be set to a random value of at least 32 characters in production"
        )
    if config.get("DEBUG") or _bool(env.get("FLASK_DEBUG")):
        raise ConfigError("debug mode must be off in production")
    if not env.get("DATABASE_URL"):
        raise ConfigError("DATABASE_URL must be set in production")
