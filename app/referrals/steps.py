"""What some pathway steps show: the matching services panel and the choices that depend
on the referral (services that fit; organisations a consent may name)."""

from __future__ import annotations

from flask import Flask, g, has_request_context
from sqlalchemy import select

from app.auth.models import Organisation
from app.extensions import db
from app.formkit import register_choice_source
from app.referrals import hooks


def _step_data() -> dict:
    return getattr(g, "pathways_step_data", {}) if has_request_context() else {}


def matching_service_choices() -> list[tuple[str, str]]:
    """On a pathway step: the services that fit its needs and person, best first.

    Elsewhere (showing answers already given): every service, so ids read as names.
    """
    from app.directory import matching
    from app.directory.models import Service

    data = _step_data()
    if data:
        services = [m.service for m in matching.match_for_task_data(data, data.get("sector")).matches]
    else:
        services = list(db.session.scalars(select(Service).order_by(Service.name)))
    return [(str(s.id), f"{s.name} — {s.organisation.name}") for s in services]


def receiving_organisation_choices() -> list[tuple[str, str]]:
    """Organisations with at least one service in the directory (for consent naming them)."""
    from app.directory.models import Service

    query = (select(Organisation).where(Organisation.active.is_(True),
                                        Organisation.id.in_(select(Service.organisation_id)))
             .order_by(Organisation.name))
    return [(str(org.id), org.name) for org in db.session.scalars(query)]


@hooks.panel("service_matches")
def service_matches_panel(referral, data: dict) -> dict:
    """Matches with their reasons, exclusions with theirs, and the gaps, for the selection step."""
    from app.directory import matching
    from app.directory.taxonomy import SERVICE_TYPES

    result = matching.match_for_task_data(data, data.get("sector"))
    return {
        "matches": [{"service": m.service, "reasons": m.reasons,
                     "type_title": str(SERVICE_TYPES.get(m.service.service_type, m.service.service_type))}
                    for m in result.matches],
        "excluded": result.excluded,
        "gaps": [str(SERVICE_TYPES.get(code, code)) for code in result.gaps],
    }


def init_app(app: Flask) -> None:
    """Register the referral-dependent choice lists and the pathways' service tasks.

    Runs before the forms are loaded, so definitions may name these lists.
    """
    from app.referrals import consent, follow_up, pathway_tasks  # noqa: F401 - registers hooks

    register_choice_source("matching_services", matching_service_choices)
    register_choice_source("organisations", receiving_organisation_choices)
    pathway_tasks.register()
    follow_up.connect_signals()
