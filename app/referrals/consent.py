"""Informed consent: recorded from the ``consent`` form, checked before anything is sent."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from app.audit.services import record_event
from app.auth.models import Organisation
from app.extensions import db
from app.referrals import hooks
from app.referrals.models import Consent, Referral


def consent_for(referral: Referral) -> Consent | None:
    return db.session.scalar(select(Consent).where(Consent.referral_id == referral.id))


@hooks.on_submission("consent")
def record_consent(user, referral: Referral, answers: dict) -> Consent:
    """Store the structured consent (replacing an earlier one when the step is redone)."""
    consent = consent_for(referral) or Consent(referral_id=referral.id, given=False, recorded_by_id=user.id)
    consent.given = bool(answers.get("consent_given"))
    consent.given_by = answers.get("given_by") if consent.given else None
    consent.shared_information = list(answers.get("shared_information") or []) if consent.given else []
    consent.organisation_scope = answers.get("organisation_scope") if consent.given else None
    consent.organisation_ids = [int(o) for o in answers.get("consent_organisations") or []
                                if str(o).isdigit()] if consent.given else []
    purposes = answers.get("purpose") or []
    consent.purposes = ([purposes] if isinstance(purposes, str) else list(purposes)) if consent.given else []
    consent.recorded_by_id = user.id
    db.session.add(consent)
    db.session.flush()
    record_event("consent.recorded" if consent.given else "consent.refused", user=user, referral=referral,
                 detail={"scope": consent.organisation_scope, "organisations": consent.organisation_ids})
    return consent


def uncovered_organisations(referral: Referral, organisation_ids: list[int]) -> list[Organisation]:
    """The organisations among ``organisation_ids`` that the referral's consent does not cover."""
    consent = consent_for(referral)
    missing = [oid for oid in dict.fromkeys(organisation_ids) if consent is None or not consent.covers(oid)]
    return [db.session.get(Organisation, oid) for oid in missing]


@hooks.validator("select_services")
def chosen_services_need_consent(referral: Referral, answers: dict) -> dict[str, str]:
    """Refuse, on the server, services of organisations the consent does not cover."""
    from app.directory.models import Service

    ids = [int(s) for s in answers.get("chosen_services") or [] if str(s).isdigit()]
    org_ids = [svc.organisation_id for svc in (db.session.get(Service, i) for i in ids) if svc]
    blocked = uncovered_organisations(referral, org_ids)
    if not blocked:
        return {}
    names = ", ".join(org.name for org in blocked)
    return {"chosen_services": _("The person's consent does not cover: %(names)s. Go back to the "
                                 "consent step, or choose other services.", names=names)}
