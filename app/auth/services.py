"""Accounts: passwords, login with throttling, server-side sessions, user administration."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select

from app.auth.models import LoginAttempt, Organisation, Role, User, UserSession
from app.core.db import utcnow
from app.extensions import db

#: argon2id with argon2-cffi's RFC 9106 low-memory profile defaults.
_hasher = PasswordHasher()
#: Verified against when the email is unknown, so timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("pathways-not-a-password")

MIN_PASSWORD_LENGTH = 10


class LoginThrottled(Exception):
    """Too many recent failures for this account or address."""


@dataclass
class LoginResult:
    user: User | None
    session_id: str | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """Check ``password``; rehash transparently when argon2 parameters changed."""
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    if user is None:
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return True


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def _is_throttled(email: str, address: str) -> bool:
    cfg = current_app.config
    since = utcnow() - timedelta(minutes=cfg["LOGIN_THROTTLE_MINUTES"])
    failures = select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since
    )
    by_account = db.session.scalar(failures.where(LoginAttempt.email == email))
    if by_account >= cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT"]:
        return True
    by_address = db.session.scalar(failures.where(LoginAttempt.address == address))
    return by_address >= cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]


def authenticate(email: str, password: str, address: str) -> LoginResult:
    """Check credentials, record the attempt, and open a new server-side session.

    Raises :class:`LoginThrottled` before checking the password when the account or the
    address has too many recent failures. The attempt is recorded either way.
    """
    email = normalise_email(email)
    address = (address or "unknown")[:64]
    if _is_throttled(email, address):
        db.session.add(LoginAttempt(email=email, address=address, succeeded=False))
        raise LoginThrottled()
    user = db.session.scalar(select(User).where(User.email == email))
    ok = verify_password(user, password) and user is not None and user.is_active
    db.session.add(LoginAttempt(email=email, address=address, succeeded=ok))
    if not ok:
        db.session.flush()
        return LoginResult(user=None)
    user.last_login_at = utcnow()
    session = open_session(user)
    return LoginResult(user=user, session_id=session.id)


def open_session(user: User) -> UserSession:
    """A fresh random session id for ``user`` — renewed at every login."""
    hours = current_app.config["SESSION_LIFETIME_HOURS"]
    session = UserSession(
        id=secrets.token_urlsafe(32), user_id=user.id, expires_at=utcnow() + timedelta(hours=hours)
    )
    db.session.add(session)
    db.session.flush()
    user.login_session_id = session.id
    return session


def load_session_user(session_id: str) -> User | None:
    """The user of a live session, or None when it is unknown, revoked or expired."""
    session = db.session.get(UserSession, session_id)
    if session is None or session.revoked_at is not None or session.expires_at <= utcnow():
        return None
    user = session.user
    if not user.is_active:
        return None
    user.login_session_id = session.id
    return user


def end_session(session_id: str | None) -> None:
    """Revoke a session so its cookie never authenticates again."""
    if not session_id:
        return
    session = db.session.get(UserSession, session_id)
    if session is not None and session.revoked_at is None:
        session.revoked_at = utcnow()
        db.session.flush()


def create_organisation(name: str, acronym: str = "", locale: str = "en") -> Organisation:
    """Add an organisation."""
    org = Organisation(name=name.strip(), acronym=acronym.strip(), locale=locale)
    db.session.add(org)
    db.session.flush()
    return org


def create_user(*, email: str, name: str, role: Role, organisation: Organisation, locale: str = "",
                password: str | None = None, password_hash: str | None = None) -> User:
    """Add a user with an argon2id password hash.

    ``password_hash`` (from :func:`hash_password`) lets a bulk loader hash a shared
    password once instead of once per user.
    """
    if password_hash is None:
        if password is None or len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"password shorter than {MIN_PASSWORD_LENGTH} characters")
        password_hash = hash_password(password)
    user = User(email=normalise_email(email), name=name.strip(), role=role,
                password_hash=password_hash, organisation=organisation, locale=locale)
    db.session.add(user)
    db.session.flush()
    return user


def update_user(user: User, *, name: str, role: Role, organisation: Organisation,
                locale: str, active: bool, password: str | None = None) -> User:
    """Change a user's profile, role, language or status; deactivation ends their sessions."""
    user.name, user.role, user.organisation, user.locale = name.strip(), role, organisation, locale
    if password:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"password shorter than {MIN_PASSWORD_LENGTH} characters")
        user.password_hash = hash_password(password)
    if user.active and not active or password:
        revoke_all_sessions(user)
    user.active = active
    db.session.flush()
    return user


def revoke_all_sessions(user: User) -> None:
    now = utcnow()
    for session in db.session.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ):
        session.revoked_at = now


def set_user_locale(user: User, locale: str) -> None:
    """Save the user's preferred language."""
    if locale not in current_app.config["SUPPORTED_LOCALES"]:
        raise ValueError("unsupported locale")
    user.locale = locale
    db.session.flush()
