"""Demo data: fictional organisations, one user per role, and the pathways in workflows/."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.auth import services as auth
from app.auth.models import Organisation, Role, User
from app.extensions import db
from app.workflow import services as workflow

#: (name, acronym, locale, focal point email or None) — all fictional.
DEMO_ORGANISATIONS = [
    ("Protection Cluster Coordination (demo)", "PCC", "en", None),
    ("Red de Protección Comunitaria (demo)", "RPC", "es", None),
    ("Casa Segura Caracas (demo)", "CSC", "es", "provider.casasegura@demo.test"),
    ("Salud Mental Maracaibo (demo)", "SMM", "es", "provider.saludmental@demo.test"),
    ("Fundacja Bezpieczny Dom (demo)", "FBD", "pl", "provider.bezpiecznydom@demo.test"),
    ("Legal Aid Kraków (demo)", "LAK", "uk", "provider.legalaid@demo.test"),
]

DEMO_USERS = [
    ("caseworker@demo.test", "Ana Caseworker", Role.caseworker, "Red de Protección Comunitaria (demo)", ""),
    ("coordinator@demo.test", "Carmen Coordinator", Role.coordinator,
     "Protection Cluster Coordination (demo)", ""),
    ("admin@demo.test", "Adam Admin", Role.admin, "Protection Cluster Coordination (demo)", ""),
]


def seed_demo() -> str:
    """Create what is missing; running it again changes nothing."""
    password = current_app.config["DEMO_PASSWORD"]
    orgs: dict[str, Organisation] = {}
    created = 0
    for name, acronym, locale, _focal in DEMO_ORGANISATIONS:
        org = db.session.scalar(select(Organisation).where(Organisation.name == name))
        if org is None:
            org = auth.create_organisation(name, acronym, locale)
            created += 1
        orgs[name] = org
    users = [u for u in DEMO_USERS]
    users += [(focal, f"Focal point {acronym}", Role.provider, name, locale)
              for name, acronym, locale, focal in DEMO_ORGANISATIONS if focal]
    for email, full_name, role, org_name, locale in users:
        if db.session.scalar(select(User.id).where(User.email == email)) is None:
            auth.create_user(email=email, name=full_name, password=password, role=role,
                             organisation=orgs[org_name], locale=locale)
            created += 1
    versions = workflow.publish_directory()
    return (f"{created} demo records created; pathways: "
            + ", ".join(f"{v.pathway.key} v{v.number}" for v in versions))
