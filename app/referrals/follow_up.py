"""Following each receiving service to an answer: deadlines, reminders, escalation, follow-up.

The deadlines live in the pathway (``workflows/shared/send_to_services.bpmn``): after sending,
it loops "wait for the answers" with two boundary timers — half time (a reminder) and the
deadline (expiry) — whose durations come from :func:`watch_targets`. The service tasks here do
the work; the worker fires the timers (``app.workflow.services.fire_due_timers``).

From outside the workflow — an answer (web or SMS), an undeliverable SMS, the caseworker's
follow-up — the instance is *poked* with ``targets_changed``: the worker delivers it on its next
tick and the loop looks again. A decline is escalated at once, like an expiry: the coordinators
are alerted and the caseworker is offered the next matching service (or to send again, or to
close it).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import update
from werkzeug.exceptions import NotFound

from app.audit.services import record_event
from app.auth.permissions import can_edit_referral
from app.core.db import utcnow
from app.extensions import db
from app.notifications import services as notifications
from app.referrals.models import Referral, ReferralTarget, TargetStatus
from app.workflow import services as workflow
from app.workflow.service_tasks import ServiceCall

#: A timer duration meaning "no timer needed now" (nothing pending): ten years.
NO_TIMER = "P3650D"
FOLLOW_UP_ACTIONS = ("replace", "resend", "close")
#: How each kind of escalation is told: (to the coordinators, to the caseworker).
_ESCALATIONS = {
    "declined": ("alert_declined", "target_declined"),
    "expired": ("alert_expired", "target_expired"),
    "undeliverable": ("alert_undeliverable", "target_unreachable"),
}


class FollowUpConflict(Exception):
    """The target does not (or no longer) need a follow-up, or the choice is not offered."""


def needs_follow_up(target: ReferralTarget) -> bool:
    """Declined or unanswered, and the caseworker has not yet chosen what to do about it."""
    return target.status in (TargetStatus.declined, TargetStatus.no_response) and target.follow_up is None


def is_open(target: ReferralTarget) -> bool:
    return target.status == TargetStatus.pending or needs_follow_up(target)


def reminder_at(target: ReferralTarget) -> datetime | None:
    """Half time between sending and the deadline, if the reminder is still to be sent."""
    if target.status != TargetStatus.pending or target.reminded_at or not (target.respond_by and target.sent_at):
        return None
    return target.sent_at + (target.respond_by - target.sent_at) / 2


def _duration(until: datetime, now: datetime) -> str:
    return f"PT{max(0, math.ceil((until - now).total_seconds()))}S"


# -- service tasks (the pathway calls these) ---------------------------------------------------


def _referral(call: ServiceCall) -> Referral:
    from app.referrals.pathway_tasks import referral_for_instance

    return referral_for_instance(call.instance_id)


def watch_targets(call: ServiceCall) -> dict:
    """``{open, pending, follow_up, reminder_in, deadline_in}`` for the loop and its timers."""
    referral, now = _referral(call), utcnow()
    pending = [t for t in referral.targets if t.status == TargetStatus.pending]
    reminders = [at for t in pending if (at := reminder_at(t))]
    deadlines = [t.respond_by for t in pending if t.respond_by]
    return {
        "open": sum(1 for t in referral.targets if is_open(t)),
        "pending": len(pending),
        "follow_up": sum(1 for t in referral.targets if needs_follow_up(t)),
        "reminder_in": _duration(min(reminders), now) if reminders else NO_TIMER,
        "deadline_in": _duration(min(deadlines), now) if deadlines else NO_TIMER,
    }


def send_reminders(call: ServiceCall) -> int:
    """Remind each provider still silent at half time: by SMS, and in its web inbox."""
    referral, now = _referral(call), utcnow()
    count = 0
    for target in referral.targets:
        at = reminder_at(target)
        if at is None or at > now:
            continue
        target.reminded_at = now
        _remind(target)
        record_event("target.reminded", referral=referral, detail={"target": target.code})
        count += 1
    db.session.flush()
    return count


def _remind(target: ReferralTarget) -> None:
    from app.sms.services import queue_reminder

    queue_reminder(target)
    notifications.notify_many(target.service.focal_users, "provider_reminder", target=target)


def expire_overdue(call: ServiceCall) -> int:
    """Mark the targets past their deadline as not answered and escalate each."""
    referral, now = _referral(call), utcnow()
    count = 0
    for target in list(referral.targets):
        if target.status == TargetStatus.pending and target.respond_by and target.respond_by <= now \
                and _expire(target):
            escalate(target, "expired")
            count += 1
    return count


def _expire(target: ReferralTarget) -> bool:
    """Pending -> no_response, conditionally: an answer that arrives at the same moment wins."""
    changed = db.session.execute(
        update(ReferralTarget)
        .where(ReferralTarget.id == target.id, ReferralTarget.status == TargetStatus.pending)
        .values(status=TargetStatus.no_response, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(target)
    return changed == 1


def escalate(target: ReferralTarget, why: str) -> None:
    """Alert the coordinators and tell the caseworker, who is offered what to do next."""
    alert, tell = _ESCALATIONS[why]
    target.escalated_at = utcnow()
    notifications.notify_many(notifications.coordinators(), alert, target=target)
    notifications.notify(target.referral.created_by, tell, target=target)
    record_event("target.escalated", referral=target.referral, detail={"target": target.code, "why": why})
    db.session.flush()


# -- events from outside the workflow ------------------------------------------------------------


def on_target_created(target: ReferralTarget, **_kwargs) -> None:
    """Receiver of ``target_created``: the service's web focal points see it in the app too."""
    notifications.notify_many(target.service.focal_users, "provider_new", target=target)


def on_answered(target: ReferralTarget) -> None:
    """After an accept or a decline (web or SMS): tell the caseworker; a decline escalates at once."""
    if target.status == TargetStatus.declined:
        escalate(target, "declined")
    elif target.status == TargetStatus.accepted:
        notifications.notify(target.referral.created_by, "target_accepted", target=target)
    workflow.poke_instance(target.referral.instance_id, "targets_changed")


def on_outcome(target: ReferralTarget) -> None:
    notifications.notify(target.referral.created_by, "target_completed", target=target)


def on_undeliverable(message, reason: str | None = None, **_kwargs) -> None:
    """Receiver of ``message_undeliverable`` (an SMS to the service failed, or its number opted
    out): fall back to the service's web focal points and alert the coordinators; with no web
    focal point the service cannot be reached, which escalates like a non-answer."""
    target = message.target
    if target is None or target.status != TargetStatus.pending or target.delivery_failed_at is not None:
        return
    target.delivery_failed_at = utcnow()
    record_event("target.undeliverable", referral=target.referral,
                 detail={"target": target.code, "outbox": message.id, "error": reason})
    focal = [u for u in target.service.focal_users if u.active]
    if focal:
        notifications.notify_many(notifications.coordinators(), "alert_undeliverable", target=target)
        notifications.notify(target.referral.created_by, "target_undeliverable", target=target)
    elif _expire(target):
        escalate(target, "undeliverable")
    workflow.poke_instance(target.referral.instance_id, "targets_changed")
    _refresh(target.referral)


# -- the caseworker's follow-up ------------------------------------------------------------------


def alternatives(referral: Referral, target: ReferralTarget, data: dict | None = None) -> list:
    """Matching services of the same type not yet asked, whose organisation the consent covers,
    best first (``app.directory.matching.Match``, with its reasons). ``data`` is what the running
    workflow knows (``workflow.instance_data``), loaded here when not given."""
    from app.directory import matching
    from app.referrals.consent import consent_for

    if not needs_follow_up(target) or target.service is None:
        return []
    if data is None:
        data = workflow.instance_data(referral.instance)
    data = {**data, "needs": [target.service.service_type]}
    asked = {t.service_id for t in referral.targets}
    consent = consent_for(referral)
    result = matching.match_for_task_data(data, data.get("sector") or None)
    return [m for m in result.matches
            if m.service.id not in asked and consent is not None and consent.covers(m.service.organisation_id)]


def follow_up_target(user, referral: Referral, target: ReferralTarget, action: str,
                     service_id: int | None = None) -> ReferralTarget | None:
    """The caseworker's choice after a decline or no answer: ``replace`` (send to ``service_id``,
    one of :func:`alternatives`), ``resend`` (ask the same service again, after no answer) or
    ``close``. Returns the new target for ``replace``. Raises :class:`FollowUpConflict`."""
    from app.referrals.pathway_tasks import create_target

    if not can_edit_referral(user, referral) or target.referral_id != referral.id:
        raise NotFound()
    if action not in FOLLOW_UP_ACTIONS or not needs_follow_up(target):
        raise FollowUpConflict(target.code)
    new = None
    answer_within = (target.respond_by - target.sent_at) if target.respond_by and target.sent_at else None
    if action == "replace":
        match = next((m for m in alternatives(referral, target) if m.service.id == service_id), None)
        if match is None:
            raise FollowUpConflict(target.code)
        new = create_target(referral, match.service, urgency=target.urgency, answer_within=answer_within,
                            user=user, replaces=target)
        target.follow_up = "replaced"
    elif action == "resend":
        if target.status != TargetStatus.no_response:
            raise FollowUpConflict(target.code)  # a decline is an answer: ask another service
        _resend(target, answer_within)
    else:
        target.follow_up = "closed"
    if target.follow_up:
        target.followed_up_at, target.followed_up_by_id = utcnow(), user.id
    record_event(f"target.follow_up_{action}", user=user, referral=referral,
                 detail={"target": target.code, **({"new_target": new.code} if new else {})})
    workflow.poke_instance(referral.instance_id, "targets_changed")
    _refresh(referral)
    return new


def _resend(target: ReferralTarget, answer_within: timedelta | None) -> None:
    from app.referrals.pathway_tasks import target_created

    now = utcnow()
    changed = db.session.execute(
        update(ReferralTarget)
        .where(ReferralTarget.id == target.id, ReferralTarget.status == TargetStatus.no_response,
               ReferralTarget.follow_up.is_(None))
        .values(status=TargetStatus.pending, sent_at=now, respond_by=now + answer_within if answer_within else None,
                sends=ReferralTarget.sends + 1, reminded_at=None, escalated_at=None, delivery_failed_at=None,
                updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise FollowUpConflict(target.code)
    db.session.refresh(target)
    target_created.send(target)


def connect_signals() -> None:
    """Follow targets from creation to answer (called once at start-up)."""
    from app.referrals.pathway_tasks import target_created
    from app.sms.signals import message_undeliverable

    target_created.connect(on_target_created, weak=False)
    message_undeliverable.connect(on_undeliverable, weak=False)
    workflow.instance_advanced.connect(_on_instance_advanced, weak=False)


def _on_instance_advanced(instance, **_kwargs) -> None:
    """After the worker ran an instance (timers, a poke): its referral's status follows."""
    from sqlalchemy import select

    referral = db.session.scalar(select(Referral).where(Referral.instance_id == instance.id))
    if referral is not None:
        _refresh(referral)


def _refresh(referral: Referral) -> None:
    from app.referrals.services import refresh_status

    refresh_status(referral)
