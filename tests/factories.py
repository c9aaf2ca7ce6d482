"""Test data made through the services, as the app itself would make it."""

from __future__ import annotations

import itertools
from functools import lru_cache

from app.auth import services as auth
from app.auth.models import Organisation, Role, User

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return auth.hash_password(PASSWORD)


def organisation(name: str | None = None, locale: str = "en") -> Organisation:
    n = next(_counter)
    return auth.create_organisation(name or f"Organisation {n}", f"O{n}", locale)


def user(role: str | Role = "caseworker", *, organisation: Organisation | None = None,
         email: str | None = None, locale: str = "") -> User:
    n = next(_counter)
    role = Role(role) if isinstance(role, str) else role
    org = organisation or globals()["organisation"]()
    return auth.create_user(email=email or f"{role.value}{n}@example.test", name=f"{role.value.title()} {n}",
                            password_hash=_password_hash(),  # hashing once per run keeps the suite fast
                            role=role, organisation=org, locale=locale)
