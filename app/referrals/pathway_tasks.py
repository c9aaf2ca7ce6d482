"""What the pathways' service tasks do: send to the chosen services, start a linked
referral, record service gaps. Registered with the workflow engine by operator name."""

from __future__ import annotations

import secrets
from datetime import timedelta

from blinker import Namespace
from sqlalchemy import select

from app.audit.services import record_event
from app.auth.models import User
from app.core.db import utcnow
from app.extensions import db
from app.referrals.consent import consent_for
from app.referrals.models import Referral, ReferralTarget, TargetStatus
from app.workflow import service_tasks
from app.workflow.service_tasks import ServiceCall

signals = Namespace()
#: Sent for each target created and not blocked, before the commit: (target).
target_created = signals.signal("target-created")

_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L: read over a phone


def referral_for_instance(instance_id: int) -> Referral:
    referral = db.session.scalar(select(Referral).where(Referral.instance_id == instance_id))
    if referral is None:
        raise LookupError(f"no referral runs on workflow instance {instance_id}")
    return referral


def _new_code() -> str:
    while True:
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))
        if db.session.scalar(select(ReferralTarget.id).where(ReferralTarget.code == code)) is None:
            return code


def send_referral(call: ServiceCall) -> dict:
    """Create one target per chosen service; an organisation the consent does not cover is
    recorded as blocked and gets nothing."""
    from app.directory.models import Service

    referral = referral_for_instance(call.instance_id)
    consent = consent_for(referral)
    hours = call.data.get("response_hours")
    answer_within = timedelta(hours=int(hours)) if isinstance(hours, int) else None
    existing = {t.service_id for t in referral.targets}
    sent = blocked = 0
    for raw in call.data.get("chosen_services") or []:
        service = db.session.get(Service, int(raw)) if str(raw).isdigit() else None
        if service is None or service.id in existing:
            continue
        covered = consent is not None and consent.covers(service.organisation_id)
        create_target(referral, service, urgency=call.data.get("urgency"), answer_within=answer_within,
                      user=_user(call), covered=covered)
        existing.add(service.id)
        if covered:
            sent += 1
        else:
            blocked += 1
    return {"sent": sent, "blocked": blocked}


def create_target(referral: Referral, service, *, urgency: str | None, answer_within: timedelta | None,
                  user: User | None, covered: bool = True, replaces: ReferralTarget | None = None) -> ReferralTarget:
    """One receiving service of the referral (flushed): pending, with its answer deadline, and
    announced (``target_created``: SMS, web focal points) — or ``blocked`` when the consent does
    not cover the service's organisation, and then nobody is told anything."""
    now = utcnow()
    target = ReferralTarget(referral=referral, service_id=service.id, organisation_id=service.organisation_id,
                            code=_new_code(), urgency=urgency,
                            respond_by=now + answer_within if answer_within and covered else None,
                            sent_at=now if covered else None, replaces_id=replaces.id if replaces else None,
                            status=TargetStatus.pending if covered else TargetStatus.blocked)
    db.session.add(target)
    db.session.flush()
    record_event("target.created" if covered else "target.blocked", user=user, referral=referral,
                 detail={"target": target.code, "service": service.id, "organisation": service.organisation_id,
                         **({"replaces": replaces.code} if replaces else {})})
    if covered:
        target_created.send(target)
    return target


def start_linked_referral(call: ServiceCall) -> str:
    """Start the pathway named by the ``pathway`` parameter as a referral linked to this one."""
    from app.referrals.services import start_referral

    parent = referral_for_instance(call.instance_id)
    user = _user(call)
    if user is None:
        raise RuntimeError("a linked referral needs the caseworker who confirmed it")
    child = start_referral(user, str(call.params.get("pathway")), parent=parent)
    record_event("referral.linked", user=user, referral=parent,
                 detail={"linked": child.reference, "pathway": call.params.get("pathway")})
    return child.reference


def record_gaps(call: ServiceCall) -> list[str]:
    """Record, for reporting, each needed service type with no matching service."""
    from app.directory import matching

    referral = referral_for_instance(call.instance_id)
    sector = call.data.get("sector")
    result = matching.match_for_task_data(call.data, sector)
    matching.record_gaps(referral.id, result.gaps, call.data.get("location"), sector)
    return list(result.gaps)


def _user(call: ServiceCall) -> User | None:
    return db.session.get(User, call.user_id) if call.user_id else None


def register() -> None:
    """Register each service task with its test-run preview."""
    from app.referrals import follow_up, previews

    service_tasks.register("send_referral", send_referral, previews.send_referral)
    service_tasks.register("watch_targets", follow_up.watch_targets, previews.watch_targets)
    service_tasks.register("send_reminders", follow_up.send_reminders, previews.nothing_due)
    service_tasks.register("expire_overdue", follow_up.expire_overdue, previews.nothing_due)
    service_tasks.register("start_linked_referral", start_linked_referral, previews.start_linked_referral)
    service_tasks.register("record_gaps", record_gaps, previews.record_gaps)
