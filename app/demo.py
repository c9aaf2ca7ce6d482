"""Demo data: fictional organisations, one user per role, the demo service directory (with a
provider focal point per organisation) and the pathways in workflows/."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.auth import services as auth
from app.auth.models import Organisation, Role, User
from app.directory.demo import seed_demo_directory
from app.extensions import db
from app.workflow import services as workflow

#: The referring and coordinating organisations (name, acronym, locale) — fictional. The
#: receiving organisations come with the demo directory (app/directory/demo/).
DEMO_ORGANISATIONS = [
    ("Protection Cluster Coordination (demo)", "PCC", "en"),
    ("Red de Protección Comunitaria (demo)", "RPC", "es"),
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
    for name, acronym, locale in DEMO_ORGANISATIONS:
        org = db.session.scalar(select(Organisation).where(Organisation.name == name))
        if org is None:
            org = auth.create_organisation(name, acronym, locale)
            created += 1
        orgs[name] = org
    for email, full_name, role, org_name, locale in DEMO_USERS:
        if db.session.scalar(select(User.id).where(User.email == email)) is None:
            auth.create_user(email=email, name=full_name, password=password, role=role,
                             organisation=orgs[org_name], locale=locale)
            created += 1
    directory = seed_demo_directory()
    versions = workflow.publish_directory()
    return (f"{created} demo records created; {directory}; pathways: "
            + ", ".join(f"{v.pathway.key} v{v.number}" for v in versions))
