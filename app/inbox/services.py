"""Answering a referral target: accept or decline (exactly once), then record the outcome.

The answer is a conditional update (``... WHERE status = 'pending'``), so when two answers
arrive together — two focal points on the web, or the web and an SMS — exactly one wins and
the other learns the target was already answered.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from werkzeug.exceptions import NotFound

from app.audit.services import record_event
from app.auth.permissions import can_view_target
from app.core.db import utcnow
from app.extensions import db
from app.referrals.consent import consent_for
from app.referrals.follow_up import on_answered, on_outcome
from app.referrals.models import FormSubmission, ReferralTarget, TargetStatus

DECLINE_REASONS = {
    "no_capacity": _l("No capacity at the moment"),
    "not_eligible": _l("The person is not eligible for this service"),
    "not_in_area": _l("Service not available in this area"),
    "service_unavailable": _l("Service temporarily unavailable"),
    "other": _l("Other reason"),
}
OUTCOMES = {
    "service_provided": _l("Service provided"),
    "partially_provided": _l("Service partially provided"),
    "did_not_attend": _l("The person did not attend"),
    "unreachable": _l("The person could not be reached"),
    "closed": _l("Closed for another reason"),
}
#: What each consented information category lets the receiving service see, by field name.
SHARED_FIELDS = {
    "identity": ["full_name", "age", "sex", "nationality", "status", "languages"],
    "contact_details": ["phone", "location", "safe_contact"],
    "needs_summary": ["needs", "reason", "urgency", "caseworker_urgency"],
    "health_information": ["medical_emergency"],
    "protection_concerns": ["immediate_danger", "child_risks", "separated", "unaccompanied",
                            "trafficking_indicators", "current_safety"],
}


class AlreadyAnswered(Exception):
    """The target was answered before (by someone else, or by SMS)."""


def inbox(user, *, status: TargetStatus | None = None, page: int = 1, per_page: int = 20):
    """The targets sent to the user's organisation, most urgent deadline first."""
    return db.paginate(inbox_query(user.organisation_id, status), page=page, per_page=per_page, error_out=False)


def inbox_query(organisation_id: int, status: TargetStatus | None = None):
    """The query behind :func:`inbox`: earliest deadline first, those without one last."""
    query = select(ReferralTarget).where(ReferralTarget.organisation_id == organisation_id,
                                         ReferralTarget.status != TargetStatus.blocked)
    if status is not None:
        query = query.where(ReferralTarget.status == status)
    return query.order_by(ReferralTarget.respond_by.asc().nulls_last(), ReferralTarget.id)


def get_target(user, target_id: int) -> ReferralTarget:
    """A target the user may see; 404 otherwise (ids reveal nothing)."""
    target = db.session.get(ReferralTarget, target_id)
    if target is None or not can_view_target(user, target) or target.status == TargetStatus.blocked:
        raise NotFound()
    return target


def _answer(user, target: ReferralTarget, status: TargetStatus, channel: str, **values) -> None:
    """``user`` is None for an answer by SMS (the sender's number is the check, see app.sms.inbound)."""
    result = db.session.execute(
        update(ReferralTarget)
        .where(ReferralTarget.id == target.id, ReferralTarget.status == TargetStatus.pending)
        .values(status=status, responded_at=utcnow(), responded_by_id=user.id if user is not None else None,
                response_channel=channel,
                updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise AlreadyAnswered(target.code)
    db.session.refresh(target)
    on_answered(target)
    _refresh_referral(target)


def accept_target(user, target: ReferralTarget, channel: str = "web") -> None:
    """Accept the referral for this service (once; a second answer raises AlreadyAnswered)."""
    _answer(user, target, TargetStatus.accepted, channel)
    record_event("target.accepted", user=user, referral=target.referral, detail={"target": target.code})


def decline_target(user, target: ReferralTarget, reason: str, note: str = "", channel: str = "web") -> None:
    """Decline with a coded reason (and an optional note without personal data)."""
    if reason not in DECLINE_REASONS:
        raise ValueError(reason)
    _answer(user, target, TargetStatus.declined, channel, decline_reason=reason, response_note=note or None)
    record_event("target.declined", user=user, referral=target.referral,
                 detail={"target": target.code, "reason": reason})


def record_outcome(user, target: ReferralTarget, outcome: str, note: str = "") -> None:
    """Record what happened after an accepted referral."""
    if target.status != TargetStatus.accepted or outcome not in OUTCOMES:
        raise AlreadyAnswered(target.code)
    target.outcome, target.outcome_note, target.outcome_at = outcome, note or None, utcnow()
    target.updated_at = utcnow()
    record_event("target.outcome", user=user, referral=target.referral,
                 detail={"target": target.code, "outcome": outcome})
    on_outcome(target)
    db.session.flush()


def shared_details(user, target: ReferralTarget) -> list[tuple[str, object, object]]:
    """After acceptance: the answers the consent lets this service see, as (form key, field name,
    value) triples — and the view is audited. Before acceptance: nothing."""
    if target.status != TargetStatus.accepted:
        return []
    consent = consent_for(target.referral)
    allowed = {"case_code"}
    for category in (consent.shared_information if consent and consent.given else []):
        allowed.update(SHARED_FIELDS.get(category, []))
    rows = []
    for submission in db.session.scalars(select(FormSubmission).where(
            FormSubmission.referral_id == target.referral_id, FormSubmission.superseded.is_(False))
            .order_by(FormSubmission.id)):
        for name, value in submission.answers.items():
            if name in allowed and value not in (None, "", []):
                rows.append((submission.form_key, name, value))
    record_event("referral.viewed", user=user, referral=target.referral,
                 detail={"page": "provider", "target": target.code, "fields": sorted({r[1] for r in rows})})
    return rows


def _refresh_referral(target: ReferralTarget) -> None:
    from app.referrals.services import refresh_status

    refresh_status(target.referral)
