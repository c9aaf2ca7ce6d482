"""Replies from providers by SMS: the webhook's work after Twilio's signature was checked.

``handle_inbound(params)`` is the one function behind both ``POST /sms/inbound`` and the
development page's "reply as this phone":

1. Record the message, insert-first, under the unique ``MessageSid``: when the row exists (a
   redelivered webhook, or the same one arriving concurrently) nothing else happens.
2. Parse the text (``app.sms.replies``), find the target by its code, and accept the answer only
   from the SMS phone registered for the target's service.
3. Answer through ``app.inbox.services`` (the same conditional update as the web: one answer
   wins) and queue a reply through the outbox, all in one transaction.

Opt-outs: a STOP-family reply records an ``OptOut`` for the sender (insert-or-ignore) and the
worker suppresses every message to that number from then on; a START-family reply deletes it
(result ``applied``, no target). Neither gets a reply: Twilio answers those words itself.
Twilio's error 21610 (unsubscribed recipient) records an opt-out too (``opt_out_statement``,
used by the worker).

Delivery status callbacks (``apply_status_callback``) move an outbox message forward only; a
referral or reminder that ends ``failed`` is announced as ``message_undeliverable``
(``app.sms.signals``) after the status is committed.

Replies carry no personal data. Logs name the inbound row, the result and the target code only,
never a phone number or a message text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core.db import utcnow
from app.extensions import db
from app.sms.models import InboundMessage, InboundResult, OptOut
from app.sms.replies import Reply, parse_reply
from app.sms.services import _gsm_fold, _plain, queue_message, service_locale

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 1600  # Twilio's limit for one message
_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class BadInbound(ValueError):
    """The request lacks what every message has (a MessageSid, a sender): answer 400."""


@dataclass(frozen=True)
class InboundOutcome:
    result: InboundResult
    inbound_id: int | None = None
    reply_id: int | None = None


def _clean(value) -> str | None:
    """Text PostgreSQL can store (no NUL), or None."""
    return value.replace("\x00", "") if isinstance(value, str) else None


def normalise_phone(number: str | None) -> str | None:
    """E.164 (``+48 600-000-001`` -> ``+48600000001``), or None when it is not a phone number."""
    if not isinstance(number, str):
        return None
    compact = re.sub(r"[\s().-]", "", number)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if _E164.fullmatch(compact) else None


def handle_inbound(params: Mapping) -> InboundOutcome:
    """Process one received SMS (Twilio's webhook parameters); commits. See the module doc."""
    sid = params.get("MessageSid") or params.get("SmsSid")
    sender = params.get("From")
    if not isinstance(sid, str) or not _SID.fullmatch(sid) or not isinstance(sender, str) or not sender:
        raise BadInbound("MessageSid and From are required")
    sender = _clean(sender)
    body = _clean(params.get("Body")) or ""
    to = _clean(params.get("To"))
    now = utcnow()
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inserted = db.session.execute(
        insert(InboundMessage)
        .values(message_sid=sid, from_number=sender[:32], to_number=to[:32] if to else None,
                body=body[:MAX_BODY_CHARS], received_at=now)
        .on_conflict_do_nothing(index_elements=["message_sid"])
        .returning(InboundMessage.id)
    ).scalar()
    if inserted is None:
        db.session.rollback()
        log.info("sms inbound: duplicate MessageSid, nothing done")
        return InboundOutcome(InboundResult.duplicate)
    phone = normalise_phone(sender)
    result, target, reply_locale, reply_body = _decide(parse_reply(body), phone)
    reply = None
    if reply_body and phone:
        reply = queue_message(f"inbound:{sid}:reply", phone, reply_locale, reply_body,
                              target=target if result != InboundResult.wrong_number else None, kind="reply")
    db.session.execute(update(InboundMessage).where(InboundMessage.id == inserted)
                       .values(result=result, target_id=target.id if target is not None else None))
    db.session.commit()
    log.info("sms inbound %s: %s%s", inserted, result.value, f" (target {target.code})" if target else "")
    return InboundOutcome(result, inserted, reply.id if reply is not None else None)


def _decide(reply: Reply, phone: str | None):
    """``(result, target or None, reply locale, reply text or None)``; answers the target."""
    from app.directory.models import Service
    from app.inbox.services import DECLINE_REASONS, AlreadyAnswered, accept_target, decline_target
    from app.referrals.models import ReferralTarget, TargetStatus

    sender_service = db.session.scalar(
        select(Service).where(Service.sms_phone == phone).order_by(Service.id).limit(1)) if phone else None
    locale = service_locale(sender_service)
    if reply.stop:
        if phone:
            db.session.execute(opt_out_statement(phone, "stop", db.session.get_bind().dialect.name))
        return InboundResult.opted_out, None, locale, None  # Twilio answers STOP itself
    if reply.start:
        if phone:
            db.session.execute(delete(OptOut).where(OptOut.phone == phone))
        return InboundResult.applied, None, locale, None  # Twilio answers START itself
    if reply.decision is None or reply.code is None:
        return InboundResult.not_understood, None, locale, _text(locale, "help")
    target = db.session.scalar(select(ReferralTarget).where(ReferralTarget.code == reply.code))
    if target is None or target.status == TargetStatus.blocked:
        return InboundResult.unknown_code, None, locale, _text(locale, "unknown", code=reply.code)
    service = target.service
    if phone is None or service is None or normalise_phone(service.sms_phone) != phone:
        return InboundResult.wrong_number, target, locale, _text(locale, "wrong_number", code=target.code)
    locale = service_locale(service)
    try:
        if reply.decision == "accept":
            accept_target(None, target, channel="sms")
        else:
            reason = reply.reason if reply.reason in DECLINE_REASONS else "other"
            decline_target(None, target, reason, note=reply.note or "", channel="sms")
    except AlreadyAnswered:
        db.session.refresh(target)
        result = InboundResult.late if target.status in (TargetStatus.no_response, TargetStatus.cancelled) \
            else InboundResult.already_answered
        return result, target, locale, _text(locale, "already", code=target.code)
    kind = "accepted" if reply.decision == "accept" else "declined"
    return InboundResult.applied, target, locale, _text(locale, kind, code=target.code, target_id=target.id)


def opt_out_statement(phone: str, source: str, dialect: str):
    """``INSERT`` of an opt-out for ``phone`` (E.164) that does nothing when the number opted out
    before (the first row, and its source, is kept); for a session or a connection."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (insert(OptOut).values(phone=phone, source=source, opted_out_at=utcnow())
            .on_conflict_do_nothing(index_elements=["phone"]))


def _text(locale: str, kind: str, code: str = "", target_id: int | None = None) -> str:
    """A reply in ``locale``: no personal data, only the code and the inbox link."""
    link = f"{current_app.config['PUBLIC_BASE_URL']}/inbox/{target_id}" if target_id else ""
    with force_locale(locale):
        if kind == "accepted":
            text = _("Referral %(code)s: accepted, thank you. Details: %(link)s", code=code, link=link)
        elif kind == "declined":
            text = _("Referral %(code)s: declined, thank you.", code=code)
        elif kind == "already":
            text = _("Referral %(code)s was already answered or is closed: nothing changed.", code=code)
        elif kind == "wrong_number":
            text = _("This number is not registered for referral %(code)s: nothing changed.", code=code)
        elif kind == "unknown":
            # TRANSLATORS: keep ACCEPT and DECLINE in Latin capitals: the replies are parsed.
            text = _("No referral has the code %(code)s. Reply ACCEPT <code> or DECLINE <code> "
                     "with the code from our message.", code=code)
        else:
            # TRANSLATORS: keep ACCEPT, DECLINE, FULL, NOT ELIGIBLE and AREA in Latin capitals.
            text = _("Reply ACCEPT <code> or DECLINE <code>, optionally with a reason: FULL, "
                     "NOT ELIGIBLE or AREA.")
    return _gsm_fold(_plain(text))


# -- delivery status callbacks -----------------------------------------------------------

#: Twilio's MessageStatus -> ours. Statuses only move forward: queued < sending < sent < delivered,
#: and failed is terminal (``undelivered`` is failed too).
_CALLBACK_STATUS = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued",
    "sending": "sending", "sent": "sent", "delivered": "delivered", "read": "delivered",
    "failed": "failed", "undelivered": "failed", "canceled": "failed",
}


def apply_status_callback(outbox_id: int, params: Mapping) -> str | None:
    """Move the outbox message forward per Twilio's ``MessageStatus`` (with ``ErrorCode`` when it
    failed); returns the new status, or None when nothing changed. A conditional update: a late
    or repeated callback never moves a message back."""
    from app.sms.models import OutboxMessage, OutboxStatus

    mapped = _CALLBACK_STATUS.get(str(params.get("MessageStatus") or "").lower())
    if mapped is None:
        return None
    new = OutboxStatus(mapped)
    order = [OutboxStatus.queued, OutboxStatus.sending, OutboxStatus.unknown, OutboxStatus.sent,
             OutboxStatus.delivered]
    if new == OutboxStatus.failed:
        before = [s for s in order if s != OutboxStatus.delivered]
    else:
        before = order[:order.index(new)]
    if not before:
        return None
    values: dict = {"status": new, "updated_at": utcnow()}
    sid = _clean(params.get("MessageSid"))
    if new == OutboxStatus.failed:
        code = _clean(params.get("ErrorCode"))
        values.update(error_code=(code or "undelivered")[:40],
                      error=f"Twilio status {str(params.get('MessageStatus')).lower()[:20]}, error {code or '-'}")
    query = update(OutboxMessage).where(OutboxMessage.id == outbox_id, OutboxMessage.status.in_(before))
    if sid and _SID.fullmatch(sid):
        # Only the message Twilio knows under this SID (or one whose SID is not recorded yet).
        query = query.where((OutboxMessage.provider_id == sid) | OutboxMessage.provider_id.is_(None))
        values["provider_id"] = sid
    changed = db.session.execute(query.values(**values)).rowcount
    db.session.commit()
    if not changed:
        return None
    log.info("sms outbox %s: %s (status callback)", outbox_id, new.value)
    if new == OutboxStatus.failed:
        _announce_failed(outbox_id, values["error_code"])
    return new.value


def _announce_failed(outbox_id: int, reason: str) -> None:
    """The provider will never get it: a referral or reminder falls back to the web."""
    from app.sms.models import OutboxMessage
    from app.sms.signals import announce_undeliverable

    announce_undeliverable(db.session.get(OutboxMessage, outbox_id), reason)
