"""Queueing text messages (idempotently, in the caller's transaction) and writing them.

A message to a provider carries no personal data: the target's code, the type of service,
the urgency, the deadline, how to answer and a link to the inbox — in the recipient's language,
and never longer than two SMS segments.
"""

from __future__ import annotations

import logging
import math
import unicodedata

from flask import current_app
from flask_babel import force_locale, format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core.db import utcnow
from app.extensions import db
from app.sms.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

#: Every message must fit in this many SMS segments, in every language.
MAX_SEGMENTS = 2

URGENCIES = {
    "emergency": _l("EMERGENCY"),
    "urgent": _l("urgent"),
    "normal": _l("normal"),
}

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = set("^{}\\[~]|€\f")


def segments(body: str) -> int:
    """How many SMS segments ``body`` takes: GSM-7 (160 septets, 153 each when split; the
    extension characters take two) or else UCS-2 (70 UTF-16 units, 67 each when split)."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in body):
        units = sum(2 if c in _GSM_EXTENSION else 1 for c in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)


def queue_message(key: str, recipient: str, locale: str, body: str, target=None,
                  kind: str = "message") -> OutboxMessage | None:
    """Add a message to the outbox in the current transaction (flushed, never committed).

    Idempotent on ``key``: when a message with that key exists (even one being added by a
    concurrent transaction) it is returned and nothing is added. ``INSERT ... ON CONFLICT DO
    NOTHING`` makes this safe on PostgreSQL and SQLite alike without a savepoint. Returns None
    when there is no recipient.
    """
    if not recipient:
        return None
    now = utcnow()
    values = {"idempotency_key": key, "recipient": recipient, "locale": locale, "body": body, "kind": kind,
              "status": OutboxStatus.queued, "attempts": 0, "next_attempt_at": now, "fence": 0,
              "target_id": getattr(target, "id", None), "created_at": now, "updated_at": now}
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(insert(OutboxMessage).values(**values)
                       .on_conflict_do_nothing(index_elements=["idempotency_key"]))
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    log.info("sms queued: outbox %s", message.id)
    return message


def render_new_referral_sms(target) -> tuple[str, str]:
    """``(locale, body)`` of the message telling a service about a new referral target, in the
    service's SMS language. The service type is shortened (then left out) if needed to fit."""
    service = target.service
    locale = service_locale(service)
    with force_locale(locale):
        from app.directory.taxonomy import SERVICE_TYPES, title

        kind = title(SERVICE_TYPES, service.service_type)
        urgency = str(URGENCIES[target.urgency]) if target.urgency in URGENCIES else ""
        deadline = _("answer by %(deadline)s UTC", deadline=_plain(format_datetime(target.respond_by, "short"))) \
            if target.respond_by else ""
        link = f"{current_app.config['PUBLIC_BASE_URL']}/inbox/{target.id}"

        def body(kind_text: str) -> str:
            details = ", ".join(p for p in (kind_text, urgency, deadline) if p)
            # TRANSLATORS: keep ACCEPT and DECLINE in Latin capitals: the replies are parsed.
            text = _("New referral %(code)s: %(details)s. Reply ACCEPT %(code)s or DECLINE %(code)s. %(link)s",
                     code=target.code, details=details, link=link)
            return _gsm_fold(_plain(text))

        text = body(kind)
        cut = len(kind)
        while segments(text) > MAX_SEGMENTS and cut > 0:
            cut -= 1
            text = body(kind[:cut].rstrip() + "." if cut >= 8 else "")
    return locale, text


def _plain(text: str) -> str:
    """Ordinary spaces for the typographic ones CLDR formats use (they would force UCS-2)."""
    return text.translate({0x00A0: " ", 0x2009: " ", 0x202F: " "})


_FOLD = {"ł": "l", "Ł": "L", "đ": "d", "Đ": "D"}


def _gsm_fold(text: str) -> str:
    """Latin letters with diacritics GSM-7 lacks (á, ó, ą, ł, ...) without them, when that makes
    the whole text GSM-7: one segment holds 160 characters instead of 70. Cyrillic is kept."""
    def fold(c: str) -> str:
        if c in _GSM_BASIC or c in _GSM_EXTENSION:
            return c
        if c in _FOLD:
            return _FOLD[c]
        return "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))

    folded = "".join(fold(c) for c in text)
    return folded if all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in folded) else text


def queue_new_referral(target, **_kwargs) -> OutboxMessage | None:
    """Receiver of ``target_created``: queue the new-referral SMS if the service has a phone
    (once per sending: a re-send after no answer is a new message)."""
    phone = target.service.sms_phone if target.service is not None else None
    if not phone:
        return None
    locale, body = render_new_referral_sms(target)
    key = f"target:{target.id}:new" + (f":{target.sends}" if (target.sends or 1) > 1 else "")
    return queue_message(key, phone, locale, body, target=target, kind="referral")


def render_reminder_sms(target) -> tuple[str, str]:
    """``(locale, body)`` of the half-time reminder, in the service's SMS language."""
    locale = service_locale(target.service)
    with force_locale(locale):
        deadline = _plain(format_datetime(target.respond_by, "short")) if target.respond_by else "-"
        link = f"{current_app.config['PUBLIC_BASE_URL']}/inbox/{target.id}"
        # TRANSLATORS: keep ACCEPT and DECLINE in Latin capitals: the replies are parsed.
        text = _("Reminder: referral %(code)s waits for your answer by %(deadline)s UTC. "
                 "Reply ACCEPT %(code)s or DECLINE %(code)s. %(link)s",
                 code=target.code, deadline=deadline, link=link)
    return locale, _gsm_fold(_plain(text))


def queue_reminder(target) -> OutboxMessage | None:
    """Queue the half-time reminder SMS, if the service has a phone (once per sending)."""
    phone = target.service.sms_phone if target.service is not None else None
    if not phone:
        return None
    locale, body = render_reminder_sms(target)
    return queue_message(f"target:{target.id}:reminder:{target.sends or 1}", phone, locale, body,
                         target=target, kind="reminder")


def service_locale(service) -> str:
    """The language of the SMS to ``service`` (its ``sms_locale`` if supported, else the default)."""
    supported = current_app.config["SUPPORTED_LOCALES"]
    if service is not None and service.sms_locale in supported:
        return service.sms_locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]
