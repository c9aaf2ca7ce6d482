"""Test fixtures: a real database (SQLite file, or PostgreSQL via TEST_DATABASE_URL).

The schema is built once per run by the Alembic migrations themselves; every test starts
from empty tables. Nothing is mocked: requests go through the real app and real commits.
"""

from __future__ import annotations

import os
import re

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.extensions import db
from tests import factories

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def _database_url(tmp_path_factory) -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine

    from app.config import _database_url as normalise

    engine = create_engine(normalise(url))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    url = _database_url(tmp_path_factory)
    if POSTGRES_URL:
        _reset_postgres(url)
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SERVER_NAME": None,
    })
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Empty every table after each test that used the database."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))
        app.extensions.get("pathways_test_hooks", []).clear()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield
        db.session.remove()


class Client:
    """The Flask test client plus the two things every test needs: login and CSRF."""

    def __init__(self, app):
        self.app = app
        self.http = app.test_client()

    def __getattr__(self, name):
        return getattr(self.http, name)

    def csrf_token(self) -> str:
        page = self.http.get("/login", follow_redirects=True)
        match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.get_data(as_text=True))
        if match is None:
            match = re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page.get_data(as_text=True))
        assert match, "no CSRF token on the page"
        return match.group(1)

    def post_form(self, url: str, data: dict | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token())
        return self.http.post(url, data=data, **kwargs)

    def login(self, email: str, password: str = factories.PASSWORD):
        response = self.post_form("/login", {"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response


@pytest.fixture
def client(app):
    return Client(app)


@pytest.fixture
def login_as(app, client):
    """``login_as("caseworker")`` creates a user of that role (own organisation) and logs in."""

    def _login(role: str, organisation=None):
        with app.app_context():
            user = factories.user(role, organisation=organisation)
            db.session.commit()
            user_id, email = user.id, user.email
        client.login(email)
        return user_id

    return _login
