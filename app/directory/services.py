"""Writing and finding directory services. Functions flush, never commit.

Every write checks the whole entry first (:func:`check_service`) and raises
:class:`InvalidService` with a message per field, so the web form and the CSV import report
the same problems in the same words.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import String, cast, func, or_, select

from app.audit.services import record_event
from app.auth.models import Organisation, Role, User
from app.core.db import utcnow
from app.directory import taxonomy
from app.directory.models import Place, Service, ServiceGap, service_places
from app.directory.places import get_place, lineage_codes, load_places, place_choices  # noqa: F401 (API)
from app.extensions import db

#: E.164: a plus, a country code not starting with 0, up to 15 digits in all.
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")
MAX_AGE = 120

#: Attributes a coordinator (or a CSV row) sets on a service.
SERVICE_FIELDS = ("name", "description", "service_type", "sectors", "places", "min_age", "max_age",
                  "sexes", "statuses", "languages", "opening_hours", "accepting_referrals", "capacity",
                  "sms_phone", "sms_locale", "focal_users")


class InvalidService(ValueError):
    """The entry breaks a rule; ``errors`` maps a field name to a translated message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def normalise_phone(value: str | None) -> str | None:
    """Drop spaces, dashes, dots, brackets and slashes from a phone number; None if empty."""
    cleaned = _PHONE_SEPARATORS.sub("", value or "")
    return cleaned or None


def _unknown(codes, vocabulary) -> list[str]:
    return [c for c in codes or [] if c not in vocabulary]


def check_service(fields: dict, organisation: Organisation | None = None) -> dict[str, str]:
    """Every problem with the service ``fields`` (as passed to :func:`create_service`)."""
    errors: dict[str, str] = {}
    if not (fields.get("name") or "").strip():
        errors["name"] = _("required")
    elif len(fields["name"].strip()) > 200:
        errors["name"] = _("at most %(n)d characters", n=200)
    if fields.get("service_type") not in taxonomy.SERVICE_TYPES:
        errors["service_type"] = _("unknown service type (%(value)s)", value=fields.get("service_type") or "")
    for name, vocabulary in (("sectors", taxonomy.SECTORS), ("sexes", taxonomy.SEXES),
                             ("statuses", taxonomy.STATUSES), ("languages", taxonomy.LANGUAGES)):
        unknown = _unknown(fields.get(name), vocabulary)
        if unknown:
            errors[name] = _("unknown: %(values)s", values=", ".join(unknown))
    if "sectors" not in errors and not fields.get("sectors"):
        errors["sectors"] = _("choose at least one sector")
    if not fields.get("places"):
        errors["places"] = _("choose at least one place served")
    for name in ("min_age", "max_age"):
        age = fields.get(name)
        if age is not None and not 0 <= age <= MAX_AGE:
            errors[name] = _("must be between 0 and %(max)d", max=MAX_AGE)
    low, high = fields.get("min_age"), fields.get("max_age")
    if low is not None and high is not None and low > high and "max_age" not in errors:
        errors["max_age"] = _("must not be below the minimum age")
    if fields.get("capacity") is not None and fields["capacity"] < 0:
        errors["capacity"] = _("must be 0 or more")
    phone = fields.get("sms_phone")
    if phone is not None and not E164.match(phone):
        errors["sms_phone"] = _("not a valid E.164 number (e.g. +584141234567)")
    if fields.get("sms_locale", "en") not in taxonomy.SMS_LOCALES:
        errors["sms_locale"] = _("unknown SMS language (%(value)s); use %(codes)s",
                                 value=fields.get("sms_locale"), codes=", ".join(taxonomy.SMS_LOCALES))
    strangers = [u for u in fields.get("focal_users") or []
                 if u.role != Role.provider or (organisation is not None and u.organisation_id != organisation.id)]
    if strangers:
        errors["focal_users"] = _("focal points must be provider users of the organisation")
    return errors


def _apply(service: Service, fields: dict) -> None:
    """Check ``fields`` merged into the service's current values, then set them (all or none)."""
    unknown = set(fields) - set(SERVICE_FIELDS)
    if unknown:
        raise TypeError(f"not service fields: {sorted(unknown)}")
    merged = {**_current(service), **fields}
    errors = check_service(merged, service.organisation)
    if "name" not in errors and _name_taken(service, merged["name"].strip()):
        errors["name"] = _("this organisation already lists a service with this name")
    if errors:
        raise InvalidService(errors)
    for name, value in fields.items():
        if name in ("name", "description", "opening_hours"):
            value = (value or "").strip()
        elif name in ("sectors", "sexes", "statuses", "languages"):
            value = list(dict.fromkeys(value or []))
        setattr(service, name, value)


def _name_taken(service: Service, name: str) -> bool:
    same_name = select(Service.id).where(Service.organisation_id == service.organisation.id, Service.name == name)
    if service.id:
        same_name = same_name.where(Service.id != service.id)
    return db.session.scalar(same_name) is not None


def _current(service: Service) -> dict:
    return {name: getattr(service, name) for name in SERVICE_FIELDS} if service.id else {}


def create_service(organisation: Organisation, *, by: User | None = None, **fields) -> Service:
    """Add a service of ``organisation``; ``fields`` are :data:`SERVICE_FIELDS` (places as Place rows)."""
    service = Service(organisation=organisation, sectors=[], sexes=[], statuses=[], languages=[],
                      sms_locale="en")
    with db.session.no_autoflush:
        _apply(service, fields)
    db.session.add(service)
    db.session.flush()
    record_event("directory.service_created", user=by, detail={"service_id": service.id})
    return service


def update_service(service: Service, *, by: User | None = None, **fields) -> Service:
    """Change some :data:`SERVICE_FIELDS` of ``service`` (all checked together)."""
    with db.session.no_autoflush:
        _apply(service, fields)
    db.session.flush()
    record_event("directory.service_updated", user=by, detail={"service_id": service.id,
                                                               "fields": sorted(fields)})
    return service


def pause_service(service: Service, *, by: User | None = None) -> None:
    """Stop offering the service to caseworkers until a coordinator resumes it."""
    service.paused = True
    db.session.flush()
    record_event("directory.service_paused", user=by, detail={"service_id": service.id})


def resume_service(service: Service, *, by: User | None = None) -> None:
    """Offer a paused service again."""
    service.paused = False
    db.session.flush()
    record_event("directory.service_resumed", user=by, detail={"service_id": service.id})


def verify_service(service: Service, *, by: User | None = None, at: datetime | None = None) -> None:
    """Record that a coordinator checked the entry (now, unless ``at`` is given)."""
    service.last_verified_at = at or utcnow()
    db.session.flush()
    record_event("directory.service_verified", user=by, detail={"service_id": service.id})


def get_service(service_id: int) -> Service | None:
    """The service with this id, or None."""
    return db.session.get(Service, service_id)


def _json_has(column, code: str):
    """A JSON list column containing ``code`` (its text holds ``"code"``; portable SQL)."""
    return cast(column, String).contains(f'"{code}"', autoescape=True)


def services_query(*, service_type: str | None = None, sector: str | None = None,
                   place_code: str | None = None, status: str | None = None,
                   organisation_id: int | None = None, text: str | None = None):
    """A select of services matching every filter given, ordered by organisation and name.

    ``place_code`` keeps services whose areas overlap the place: the place itself, an
    ancestor (the service covers it) or a descendant (the service works inside it).
    ``status`` keeps services open to that status, including those open to everyone.
    """
    query = select(Service).join(Service.organisation)
    if service_type:
        query = query.where(Service.service_type == service_type)
    if sector:
        query = query.where(_json_has(Service.sectors, sector))
    if status:
        query = query.where(or_(cast(Service.statuses, String) == "[]", _json_has(Service.statuses, status)))
    if organisation_id:
        query = query.where(Service.organisation_id == organisation_id)
    if text:
        text = text.strip()
        query = query.where(or_(Service.name.icontains(text, autoescape=True),
                                Organisation.name.icontains(text, autoescape=True)))
    if place_code:
        area = select(service_places.c.service_id).join(Place, Place.id == service_places.c.place_id).where(
            or_(Place.code.in_(lineage_codes(place_code)), Place.code.startswith(place_code + "/", autoescape=True)))
        query = query.where(Service.id.in_(area))
    return query.order_by(Organisation.name, Service.name, Service.id)


def list_services(*, page: int = 1, per_page: int = 25, **filters):
    """One page (Flask-SQLAlchemy pagination) of :func:`services_query` with ``filters``."""
    return db.paginate(services_query(**filters), page=page, per_page=per_page, error_out=False)


def organisation_providers(organisation: Organisation) -> list[User]:
    """Active provider users of ``organisation``: who can be a service's focal point."""
    return list(db.session.scalars(select(User).where(
        User.organisation_id == organisation.id, User.role == Role.provider, User.active.is_(True),
    ).order_by(User.name)))


def gap_counts() -> list[tuple[str, str | None, int, datetime]]:
    """``(service type, place code, number of gaps, newest)`` per type and place, newest first."""
    newest = func.max(ServiceGap.at)
    query = (select(ServiceGap.service_type, ServiceGap.place_code, func.count(ServiceGap.id), newest)
             .group_by(ServiceGap.service_type, ServiceGap.place_code)
             .order_by(newest.desc(), ServiceGap.service_type))
    return [tuple(row) for row in db.session.execute(query)]
