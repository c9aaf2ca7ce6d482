"""Fixtures of the load and fault tests: the demo directory with a phone for every service,
caseworkers to log in as, the fake Twilio server, and the servers' processes (always stopped)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from app.directory.models import Service
from app.extensions import db
from app.workflow import services as workflow
from tests import factories
from tests.scale.processes import Processes
from tests.sms.fake_twilio import fake_twilio  # noqa: F401 - the fixture

CASEWORKERS = 24


@pytest.fixture
def processes(tmp_path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def caseworkers(app) -> list[str]:
    """The demo directory and pathways, an SMS phone for every service, and caseworkers of one
    organisation — committed before any server starts. Returns the caseworkers' emails."""
    from app.directory.demo import seed_demo_directory

    with app.app_context():
        seed_demo_directory()
        workflow.publish_directory()
        for n, service in enumerate(db.session.scalars(select(Service).order_by(Service.id))):
            if not service.sms_phone:
                service.sms_phone, service.sms_locale = f"+4850099{n:04d}", "en"
        organisation = factories.organisation("Scale test NGO")
        emails = [factories.user("caseworker", organisation=organisation).email for _ in range(CASEWORKERS)]
        db.session.commit()
        db.session.remove()
    return emails
