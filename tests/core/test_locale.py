"""Locale: the user's saved language, then the switcher, then the browser's, then DEFAULT_LOCALE."""

from app.extensions import db
from tests import factories


def _lang(response) -> str:
    import re

    return re.search(r'<html lang="([a-z]+)"', response.get_data(as_text=True)).group(1)


def test_default_locale_when_nothing_chosen(client):
    assert _lang(client.get("/login")) == "en"


def test_browser_language_is_used(client):
    page = client.get("/login", headers={"Accept-Language": "uk,pl;q=0.8"})
    assert _lang(page) == "uk"


def test_spanish_page_is_translated(client):
    page = client.get("/login", headers={"Accept-Language": "es"})
    assert _lang(page) == "es"
    assert "Iniciar sesión" in page.get_data(as_text=True)


def test_switcher_beats_browser_for_anonymous_visitors(client):
    client.post_form("/language", {"locale": "pl", "next": "/login"})
    assert _lang(client.get("/login", headers={"Accept-Language": "es"})) == "pl"


def test_saved_preference_beats_everything(app, client):
    with app.app_context():
        user = factories.user("caseworker", locale="es")
        db.session.commit()
        email = user.email
    client.login(email)
    assert _lang(client.get("/referrals/", headers={"Accept-Language": "uk"})) == "es"


def test_switcher_saves_the_choice_on_the_account(app, client):
    with app.app_context():
        user = factories.user("caseworker")
        db.session.commit()
        email, user_id = user.email, user.id
    client.login(email)
    response = client.post_form("/language", {"locale": "uk", "next": "/referrals/"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/referrals/")
    with app.app_context():
        from app.auth.models import User

        assert db.session.get(User, user_id).locale == "uk"


def test_switcher_on_every_page(app, client, login_as):
    assert 'name="locale"' in client.get("/login").get_data(as_text=True)
    login_as("caseworker")
    for url in ("/referrals/", "/referrals/new"):
        assert 'name="locale"' in client.get(url).get_data(as_text=True)
