"""Demo directory: the places and services in this folder, and a focal point per organisation.

Everything is fictional: organisations, services and phone numbers (+58 412 000 xxxx and
+48 500 000 xxx ranges). See README.md here for the gaps built in on purpose.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from app.auth import services as auth
from app.auth.models import Organisation, Role, User
from app.directory.csv_io import import_services
from app.directory.models import Service
from app.directory.places import load_places
from app.extensions import db

DEMO_DIR = Path(__file__).resolve().parent
PLACES_FILE = DEMO_DIR / "places.yaml"
DIRECTORY_FILE = DEMO_DIR / "directory.csv"

#: Words left out of e-mail slugs ("Fundación Brazos Abiertos" -> "brazosabiertos").
_GENERIC = {"fundacion", "fundacja", "asociacion", "stowarzyszenie", "centro", "centrum", "de", "del", "la",
            "el", "los", "las", "y", "i", "w", "dla", "the", "of", "and", "demo", "iniciativa", "red", "cooperativa"}


def provider_slug(organisation: Organisation) -> str:
    """A short ASCII slug of the organisation's name, e.g. "casasegura", "mostnadziei"."""
    ascii_name = unicodedata.normalize("NFKD", organisation.name.replace("ł", "l").replace("Ł", "L"))
    words = re.findall(r"[a-z]+", ascii_name.encode("ascii", "ignore").decode().lower())
    meaningful = [w for w in words if w not in _GENERIC] or words
    return "".join(meaningful[:2]) or (organisation.acronym or str(organisation.id)).lower()


def _focal_points(password: str) -> int:
    """A provider user for each organisation with services and no provider; link focal points."""
    created, password_hash = 0, None
    services = db.session.scalars(select(Service).order_by(Service.id)).all()
    by_org: dict[int, list[Service]] = {}
    for service in services:
        by_org.setdefault(service.organisation_id, []).append(service)
    for org_services in by_org.values():
        org = org_services[0].organisation
        providers = list(db.session.scalars(select(User).where(
            User.organisation_id == org.id, User.role == Role.provider).order_by(User.id)))
        if not providers:
            locale = Counter(s.sms_locale for s in org_services).most_common(1)[0][0]
            email = f"provider.{provider_slug(org)}@demo.test"
            if db.session.scalar(select(User.id).where(User.email == email)) is not None:
                email = f"provider.{provider_slug(org)}.{(org.acronym or str(org.id)).lower()}@demo.test"
            password_hash = password_hash or auth.hash_password(password)  # once for all of them
            providers = [auth.create_user(email=email, name=f"Focal point {org.acronym or org.name}",
                                          password_hash=password_hash, role=Role.provider,
                                          organisation=org, locale=locale)]
            created += 1
        for service in org_services:
            if not service.focal_users:
                service.focal_users = providers[:1]
    db.session.flush()
    return created


def seed_demo_directory() -> str:
    """Load the demo places and services and their focal points; flush. A second run changes nothing."""
    places = load_places(PLACES_FILE)
    summary = import_services(DIRECTORY_FILE.read_bytes())
    users = _focal_points(current_app.config["DEMO_PASSWORD"])
    return (f"directory: {places.created} places, {summary.created} services created, "
            f"{summary.updated} updated, {summary.organisations_created} organisations, "
            f"{users} focal point users")
