"""/dev/sms: the console backend's messages by phone, for administrators, in development only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.core.db import utcnow
from app.extensions import db
from app.sms.models import OutboxMessage
from app.sms.services import queue_message


def _messages(app):
    with app.app_context():
        old = queue_message("a", "+48600000001", "pl", "Older message to Poland")
        queue_message("b", "+584120001234", "es", "Mensaje a Venezuela")
        queue_message("c", "+48600000001", "pl", "Newest message to Poland")
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == old.id)
                           .values(created_at=utcnow() - timedelta(hours=1)))
        db.session.commit()


def test_admin_sees_each_phones_messages_newest_first(app, client, login_as):
    _messages(app)
    login_as("admin")
    page = client.get("/dev/sms/").get_data(as_text=True)
    assert page.index("+48600000001") < page.index("Newest message to Poland") < page.index(
        "Older message to Poland")
    assert page.index("+48600000001") < page.index("+584120001234")  # the phone with the newest first
    assert "Mensaje a Venezuela" in page


def test_only_admins(app, client, login_as):
    _messages(app)
    assert client.get("/dev/sms/").status_code == 302  # to the login page
    login_as("caseworker")
    assert client.get("/dev/sms/").status_code == 403


def test_not_there_unless_console_in_development(app, client, login_as, monkeypatch):
    login_as("admin")
    monkeypatch.setitem(app.config, "SMS_BACKEND", "twilio")
    assert client.get("/dev/sms/").status_code == 404
    monkeypatch.setitem(app.config, "SMS_BACKEND", "console")
    monkeypatch.setitem(app.config, "PATHWAYS_ENV", "production")
    assert client.get("/dev/sms/").status_code == 404
