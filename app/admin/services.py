"""Admin operations, audited."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app.audit.services import record_event
from app.auth import services as auth
from app.auth.models import Organisation, Role, User
from app.auth.permissions import can_manage_users
from app.extensions import db


class DuplicateName(Exception):
    """An organisation name or user email already in use."""


def add_organisation(actor, name: str, acronym: str, locale: str) -> Organisation:
    """Create an organisation (admins only)."""
    if not can_manage_users(actor):
        raise Forbidden()
    if db.session.scalar(select(Organisation.id).where(Organisation.name == name.strip())):
        raise DuplicateName(name)
    org = auth.create_organisation(name, acronym, locale)
    record_event("admin.organisation_created", user=actor, detail={"organisation": org.id})
    return org


def save_user(actor, user: User | None, form) -> User:
    """Create a user or update one from a validated UserForm (admins only)."""
    if not can_manage_users(actor):
        raise Forbidden()
    organisation = db.session.get(Organisation, form.organisation_id.data)
    role = Role(form.role.data)
    if user is None:
        email = auth.normalise_email(form.email.data)
        if db.session.scalar(select(User.id).where(User.email == email)):
            raise DuplicateName(email)
        user = auth.create_user(email=email, name=form.name.data, password=form.password.data,
                                role=role, organisation=organisation, locale=form.locale.data)
        user.active = form.active.data
        record_event("admin.user_created", user=actor, detail={"user": user.id, "role": role.value})
        return user
    auth.update_user(user, name=form.name.data, role=role, organisation=organisation,
                     locale=form.locale.data, active=form.active.data, password=form.password.data or None)
    record_event("admin.user_updated", user=actor, detail={"user": user.id, "role": role.value})
    return user
