"""CSRF protection on every state-changing form; no state change on GET."""

from sqlalchemy import func, select

from app.auth.models import Organisation
from app.extensions import db


def test_post_without_csrf_token_is_refused_and_changes_nothing(app, client, login_as):
    login_as("admin")
    before = _count_orgs(app)
    response = client.post("/admin/organisations", data={"name": "Forged org", "locale": "en"})
    assert response.status_code == 400
    assert "expired or was sent from elsewhere" in response.get_data(as_text=True)
    assert _count_orgs(app) == before


def test_post_with_a_forged_token_is_refused(app, client, login_as):
    login_as("admin")
    response = client.post("/admin/organisations",
                           data={"name": "Forged org", "locale": "en", "csrf_token": "forged"})
    assert response.status_code == 400
    assert _count_orgs(app) == 1  # only the admin's own organisation


def test_login_form_needs_a_token_too(app, client):
    response = client.post("/login", data={"email": "a@example.test", "password": "whatever123"})
    assert response.status_code == 400


def test_state_changing_routes_refuse_get(app, client, login_as):
    login_as("caseworker")
    for url in ("/logout", "/language", "/referrals/1/cancel"):
        assert client.get(url).status_code == 405, url


def test_with_a_valid_token_the_change_happens(app, client, login_as):
    login_as("admin")
    response = client.post_form("/admin/organisations", {"name": "Real org", "locale": "es"})
    assert response.status_code == 302
    assert _count_orgs(app) == 2


def _count_orgs(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Organisation))
