"""Admins create organisations and users, and set roles and preferred languages."""

from sqlalchemy import select

from app.auth.models import Organisation, Role, User
from app.extensions import db


def _org_id(app, name):
    with app.app_context():
        return db.session.scalar(select(Organisation.id).where(Organisation.name == name))


def test_admin_creates_an_organisation_and_a_user_who_can_log_in(app, client, login_as):
    login_as("admin")
    assert client.post_form("/admin/organisations", {"name": "Casa Amiga", "acronym": "CA",
                                                     "locale": "es"}).status_code == 302
    org_id = _org_id(app, "Casa Amiga")
    response = client.post_form("/admin/users/new", {
        "email": "Focal@CasaAmiga.test", "name": "Focal Point", "role": "provider",
        "organisation_id": org_id, "locale": "es", "password": "a-long-password", "active": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "focal@casaamiga.test"))
        assert user.role == Role.provider and user.locale == "es" and user.organisation_id == org_id
        assert user.password_hash.startswith("$argon2id$")
    client.post_form("/logout")
    client.login("focal@casaamiga.test", "a-long-password")


def test_admin_changes_role_and_language(app, client, login_as):
    login_as("admin")
    with app.app_context():
        from tests import factories

        user = factories.user("caseworker")
        db.session.commit()
        user_id, org_id = user.id, user.organisation_id
    page = client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    assert 'value="caseworker" selected' in page or "selected" in page
    response = client.post_form(f"/admin/users/{user_id}", {
        "email": "ignored@example.test", "name": "Renamed", "role": "coordinator",
        "organisation_id": org_id, "locale": "uk", "password": "", "active": "y"})
    assert response.status_code == 302
    with app.app_context():
        user = db.session.get(User, user_id)
        assert (user.name, user.role, user.locale) == ("Renamed", Role.coordinator, "uk")
        assert user.email != "ignored@example.test"  # the login name does not change here


def test_invalid_user_form_shows_errors_next_to_fields(app, client, login_as):
    login_as("admin")
    response = client.post_form("/admin/users/new", {"email": "not-an-email", "name": "",
                                                     "role": "caseworker", "organisation_id": "1",
                                                     "password": "short"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'aria-invalid="true"' in html
    assert "at least 10 characters" in html


def test_duplicate_email_and_organisation_are_refused(app, client, login_as):
    login_as("admin")
    client.post_form("/admin/organisations", {"name": "Twice", "locale": "en"})
    again = client.post_form("/admin/organisations", {"name": "Twice", "locale": "en"})
    assert "exists already" in again.get_data(as_text=True)
    org_id = _org_id(app, "Twice")
    data = {"email": "same@example.test", "name": "One", "role": "caseworker",
            "organisation_id": org_id, "locale": "", "password": "a-long-password", "active": "y"}
    assert client.post_form("/admin/users/new", data).status_code == 302
    again = client.post_form("/admin/users/new", data)
    assert "exists already" in again.get_data(as_text=True)


def test_unknown_user_is_404(app, client, login_as):
    login_as("admin")
    assert client.get("/admin/users/99999").status_code == 404
