"""Shared by the outbox tests: queueing, reading rows back, a real gateway on the fake Twilio,
and worker processes (``flask --app wsgi worker --once``) on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select

from app.extensions import db
from app.sms.models import OutboxMessage
from app.sms.services import queue_message
from app.sms.twilio_gateway import TwilioGateway

ROOT = Path(__file__).resolve().parents[2]


def queue(count: int, *, prefix: str = "m", phone: str | None = None, body: str | None = None, **kwargs) -> list[int]:
    """``count`` messages, committed; each to its own number unless ``phone`` is given."""
    ids = []
    for n in range(count):
        message = queue_message(f"{prefix}:{n}", phone or f"+4860{n:07d}", "en", body or f"Message {prefix} {n}",
                                **kwargs)
        ids.append(message.id)
    db.session.commit()
    return ids


def rows(app) -> dict[int, OutboxMessage]:
    with app.app_context():
        found = {m.id: m for m in db.session.scalars(select(OutboxMessage))}
        db.session.expunge_all()
        return found


@contextmanager
def twilio_gateway(fake) -> Iterator[TwilioGateway]:
    gateway = TwilioGateway(fake.gateway_config())
    try:
        yield gateway
    finally:
        gateway.close()


def received_per_outbox(fake) -> Counter:
    """How many times the fake Twilio took a message for each outbox id."""
    return Counter(m.outbox_id for m in fake.messages)


def worker_process(app, fake, *, batch: int = 50, **env: str) -> subprocess.Popen:
    """``flask --app wsgi worker --once`` in a process of its own, on the test database, sending
    through ``fake``."""
    config = fake.gateway_config()
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("FLASK_", "TWILIO_", "SMS_", "DATABASE_URL", "TEST_DATABASE_URL"))}
    environment.update({
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "PATHWAYS_ENV": "development",
        "PUBLIC_BASE_URL": config["PUBLIC_BASE_URL"],
        "SMS_BACKEND": "twilio",
        "SMS_TIMEOUT_SECONDS": "5",
        **{key: str(config[key]) for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER",
                                             "TWILIO_API_BASE_URL")},
        **env,
    })
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--once", "--batch", str(batch)],
                            cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
