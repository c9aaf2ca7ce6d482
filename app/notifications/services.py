"""Telling people what happened to a referral: in the app, and by SMS for those who chose it.

A notification stores codes only (the referral's reference, the target's code, the service's
name) and is rendered when shown, in the reader's language; the SMS copy is rendered once, in
the recipient's language, and goes through the outbox in the caller's transaction.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from app.auth.models import Role, User
from app.core.db import utcnow
from app.extensions import db
from app.notifications.models import Notification

#: What each kind says. Parameters: reference (referral), code (target), service (its name),
#: reason / outcome (already translated titles are looked up at render time).
KINDS = {
    "target_accepted": _l("%(service)s accepted referral %(reference)s."),
    "target_declined": _l("%(service)s declined referral %(reference)s. Choose what to do next."),
    "target_expired": _l("%(service)s did not answer referral %(reference)s in time. Choose what to do next."),
    "target_undeliverable": _l("The SMS to %(service)s about referral %(reference)s could not be delivered: "
                               "it waits in their web inbox."),
    "target_unreachable": _l("%(service)s could not be reached about referral %(reference)s (no working SMS "
                             "number, no web focal point). Choose what to do next."),
    "target_completed": _l("%(service)s recorded the outcome of referral %(reference)s."),
    "alert_declined": _l("Alert: %(service)s declined a referral (%(code)s)."),
    "alert_expired": _l("Alert: %(service)s did not answer a referral in time (%(code)s)."),
    "alert_undeliverable": _l("Alert: SMS to %(service)s could not be delivered (%(code)s). "
                              "Check its phone number."),
    "provider_new": _l("New referral %(code)s for %(service)s is waiting in your inbox."),
    "provider_reminder": _l("Referral %(code)s for %(service)s still waits for your answer."),
}


def notify(user: User, kind: str, *, referral=None, target=None, **params) -> Notification:
    """Record a notification for ``user`` (flushed) and, if the user chose SMS, queue its SMS."""
    if kind not in KINDS:
        raise KeyError(kind)
    if target is not None:
        params.setdefault("code", target.code)
        params.setdefault("service", target.service.name if target.service else "")
        referral = referral or target.referral
    if referral is not None:
        params.setdefault("reference", referral.reference)
    notification = Notification(user_id=user.id, kind=kind, referral_id=referral.id if referral else None,
                                target_id=target.id if target else None, params=params)
    db.session.add(notification)
    db.session.flush()
    if user.notify_by_sms and user.phone and user.active:
        _queue_sms(user, notification)
    return notification


def notify_many(users, kind: str, **kwargs) -> int:
    count = 0
    for user in {u.id: u for u in users if u.active}.values():
        notify(user, kind, **kwargs)
        count += 1
    return count


def coordinators() -> list[User]:
    return list(db.session.scalars(select(User).where(User.role == Role.coordinator, User.active.is_(True))))


def text(notification: Notification) -> str:
    """The notification's sentence in the current language."""
    params = {k: v for k, v in (notification.params or {}).items() if isinstance(v, str | int)}
    for key in ("service", "reference", "code"):
        params.setdefault(key, "")
    return str(KINDS[notification.kind]) % params if notification.kind in KINDS else notification.kind


def link(notification: Notification) -> str | None:
    """Where the notification leads (a path; built without a request, for the worker too): the
    referral (caseworkers), the inbox entry (providers), the notifications (coordinators)."""
    if notification.kind.startswith("provider_") and notification.target_id:
        return f"/inbox/{notification.target_id}"
    if notification.kind.startswith("target_") and notification.referral_id:
        return f"/referrals/{notification.referral_id}"
    if notification.kind.startswith("alert_"):
        return "/notifications/"
    return None


def _queue_sms(user: User, notification: Notification) -> None:
    from app.sms.services import _gsm_fold, _plain, queue_message

    supported = current_app.config["SUPPORTED_LOCALES"]
    locale = user.locale if user.locale in supported else current_app.config["BABEL_DEFAULT_LOCALE"]
    target = link(notification)
    with force_locale(locale):
        body = "Pathways: " + text(notification)
    if target:
        body += " " + current_app.config["PUBLIC_BASE_URL"].rstrip("/") + target
    queue_message(f"notification:{notification.id}", user.phone, locale, _gsm_fold(_plain(body)),
                  target=notification.target, kind="notification")


def unread_count(user: User) -> int:
    return db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def for_user(user: User, *, page: int = 1, per_page: int = 30):
    query = (select(Notification).where(Notification.user_id == user.id)
             .order_by(Notification.created_at.desc(), Notification.id.desc()))
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def mark_all_read(user: User) -> int:
    return db.session.execute(
        update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())).rowcount
