"""Who may do what.

Route-level: every view is wrapped by exactly one of :func:`public` or :func:`roles_required`,
which records the rule on the view so a test can walk the URL map and find any view left
unguarded. Object-level: the ``can_*`` functions below, called by services and routes.
"""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from app.auth.models import Role

#: Attribute set on a guarded view function; the route-walking test looks for it.
ACCESS_ATTR = "__pathways_access__"


def public(view):
    """Mark a view as reachable without logging in (login page, health check)."""
    setattr(view, ACCESS_ATTR, "public")
    return view


def roles_required(*roles: Role):
    """Require a logged-in, active user with one of ``roles`` (any role if none given)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                from app.extensions import login_manager

                return login_manager.unauthorized()
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        setattr(wrapper, ACCESS_ATTR, "roles:" + ",".join(r.value for r in roles) if roles else "login")
        return wrapper

    return decorator


login_required = roles_required()


# -- object-level checks -----------------------------------------------------------------


def can_view_referral(user, referral) -> bool:
    """Caseworkers see their own organisation's referrals, nobody else's.

    Coordinators and admins work with directories, pathways and aggregate reports, not with
    a person's case; receiving providers get access per referral target (notification loop).
    """
    if not user or not user.is_authenticated:
        return False
    return user.role == Role.caseworker and referral.organisation_id == user.organisation_id


def can_edit_referral(user, referral) -> bool:
    """Only caseworkers of the referring organisation move a referral forward."""
    return (
        can_view_referral(user, referral)
        and user.role == Role.caseworker
        and referral.organisation_id == user.organisation_id
    )


def can_start_referral(user) -> bool:
    return bool(user and user.is_authenticated and user.role == Role.caseworker)


def can_do_task(user, lane: str | None) -> bool:
    """A task in a lane is for the role of the same name; a task with no lane is the caseworker's."""
    return user.role.value == (lane or Role.caseworker.value)


def can_manage_users(user) -> bool:
    return bool(user and user.is_authenticated and user.role == Role.admin)


def can_view_target(user, target) -> bool:
    """Provider focal points see the referral targets sent to their own organisation only."""
    return bool(user and user.is_authenticated and user.role == Role.provider
                and target.organisation_id == user.organisation_id)
