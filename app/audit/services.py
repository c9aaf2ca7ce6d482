"""Writing and reading the audit trail."""

from __future__ import annotations

from flask import has_request_context, request
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.extensions import db


def record_event(action: str, *, user=None, referral=None, step: str | None = None,
                 detail: dict | None = None) -> AuditEvent:
    """Add an audit event to the current transaction (flushed, not committed)."""
    event = AuditEvent(
        action=action,
        user_id=getattr(user, "id", None),
        referral_id=getattr(referral, "id", None),
        step=step,
        detail=detail or {},
        address=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    db.session.flush()
    return event


def referral_history(referral) -> list[AuditEvent]:
    """The referral's events, oldest first."""
    query = (select(AuditEvent).where(AuditEvent.referral_id == referral.id)
             .order_by(AuditEvent.at, AuditEvent.id))
    return list(db.session.scalars(query))


def _titles() -> dict:
    from flask_babel import lazy_gettext as _l

    return {
        "referral.started": _l("Referral started"),
        "referral.viewed": _l("Viewed the referral's details"),
        "referral.completed": _l("Referral completed"),
        "referral.cancelled": _l("Referral cancelled"),
        "step.completed": _l("Completed a step"),
        "step.draft_saved": _l("Saved a draft"),
        "step.went_back": _l("Went back to a previous step"),
        "consent.recorded": _l("Recorded the person's consent"),
        "consent.refused": _l("Recorded that consent was refused"),
        "referral.linked": _l("Started a linked referral"),
        "target.created": _l("Sent the referral to a service"),
        "target.blocked": _l("Did not send to a service: consent does not cover it"),
        "target.accepted": _l("The service accepted the referral"),
        "target.declined": _l("The service declined the referral"),
        "target.outcome": _l("The service recorded the outcome"),
        "sms.failed": _l("An SMS to the service could not be sent"),
        "sms.unknown": _l("An SMS to the service may not have been sent; to be checked"),
        "sms.suppressed": _l("An SMS was not sent: the number opted out (STOP)"),
        "sms.unreconciled": _l("An SMS could not be confirmed as sent or not within a day"),
        "target.reminded": _l("The service was reminded to answer"),
        "target.escalated": _l("Escalated: the coordinators were alerted"),
        "target.undeliverable": _l("The service could not be reached by SMS"),
        "target.follow_up_replace": _l("Sent to the next matching service instead"),
        "target.follow_up_resend": _l("Sent to the service again"),
        "target.follow_up_close": _l("Closed without another service"),
        "studio.pathway_created": _l("Created a new pathway"),
        "studio.draft_started": _l("Started a draft of the pathway"),
        "studio.file_saved": _l("Saved a file of the draft"),
        "studio.file_uploaded": _l("Uploaded a file into the draft"),
        "studio.draft_discarded": _l("Discarded the draft"),
        "studio.published": _l("Published a new version of the pathway"),
        "studio.rolled_back": _l("Rolled the pathway back to an earlier version"),
        "auth.login": _l("Logged in"),
        "auth.logout": _l("Logged out"),
    }


def event_title(event: AuditEvent) -> str:
    """A translated, human title for an audit event."""
    return str(_titles().get(event.action, event.action))
