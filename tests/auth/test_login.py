"""Login, throttling, server-side sessions and logout."""

from sqlalchemy import func, select

from app.auth.models import LoginAttempt, UserSession
from app.extensions import db
from tests import factories


def _make_user(app, **kwargs):
    with app.app_context():
        user = factories.user("caseworker", **kwargs)
        db.session.commit()
        return user.email


def test_login_with_email_and_password(app, client):
    email = _make_user(app)
    response = client.post_form("/login", {"email": email.upper(), "password": factories.PASSWORD})
    assert response.status_code == 302
    assert client.get("/referrals/").status_code == 200


def test_wrong_password_is_refused_with_a_message(app, client):
    email = _make_user(app)
    response = client.post_form("/login", {"email": email, "password": "wrong password!"})
    assert response.status_code == 401
    assert "not correct" in response.get_data(as_text=True)
    assert client.get("/referrals/").status_code == 302


def test_unknown_email_gets_the_same_answer(app, client):
    response = client.post_form("/login", {"email": "nobody@example.test", "password": "whatever123"})
    assert response.status_code == 401
    assert "not correct" in response.get_data(as_text=True)


def test_inactive_user_cannot_log_in(app, client):
    with app.app_context():
        user = factories.user("caseworker")
        user.active = False
        db.session.commit()
        email = user.email
    assert client.post_form("/login", {"email": email, "password": factories.PASSWORD}).status_code == 401


def test_login_throttled_per_account(app, client):
    email = _make_user(app)
    limit = app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    for _ in range(limit):
        assert client.post_form("/login", {"email": email, "password": "bad password"}).status_code == 401
    # Even the right password is refused while the account is throttled.
    response = client.post_form("/login", {"email": email, "password": factories.PASSWORD})
    assert response.status_code == 429
    assert "Too many failed attempts" in response.get_data(as_text=True)
    # Another account from the same address is not affected yet.
    other = _make_user(app)
    assert client.post_form("/login", {"email": other, "password": factories.PASSWORD}).status_code == 302


def test_login_throttled_per_address(app, client):
    limit = app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]
    for n in range(limit):
        client.post_form("/login", {"email": f"guess{n}@example.test", "password": "bad password"})
    email = _make_user(app)
    response = client.post_form("/login", {"email": email, "password": factories.PASSWORD})
    assert response.status_code == 429
    # A different address is not throttled.
    response = client.post_form("/login", {"email": email, "password": factories.PASSWORD},
                                environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert response.status_code == 302
    with app.app_context():
        failures = db.session.scalar(select(func.count()).select_from(LoginAttempt)
                                     .where(LoginAttempt.succeeded.is_(False)))
        assert failures == limit + 1


def test_session_id_renewed_at_every_login(app, client):
    email = _make_user(app)
    client.login(email)
    with client.session_transaction() as sess:
        first = sess["_user_id"]
    client.post_form("/logout")
    client.login(email)
    with client.session_transaction() as sess:
        second = sess["_user_id"]
    assert first != second
    with app.app_context():
        assert db.session.get(UserSession, first).revoked_at is not None
        assert db.session.get(UserSession, second).revoked_at is None


def test_logout_ends_the_session_even_for_a_copied_cookie(app, client):
    email = _make_user(app)
    client.login(email)
    with client.session_transaction() as sess:
        stolen = dict(sess)
    response = client.post_form("/logout")
    assert response.status_code == 302
    replay = app.test_client()
    with replay.session_transaction() as sess:
        sess.update(stolen)
    assert replay.get("/referrals/").status_code == 302  # back to the login page


def test_logout_needs_post(app, client):
    email = _make_user(app)
    client.login(email)
    assert client.get("/logout").status_code == 405
    assert client.get("/referrals/").status_code == 200


def test_next_parameter_cannot_redirect_elsewhere(app, client):
    email = _make_user(app)
    token = client.csrf_token()
    response = client.post("/login?next=https://evil.example/", data={
        "email": email, "password": factories.PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_deactivating_a_user_ends_their_sessions(app, client):
    from app.auth import services

    email = _make_user(app)
    client.login(email)
    with app.app_context():
        user = db.session.scalar(select(UserSession)).user
        services.update_user(user, name=user.name, role=user.role, organisation=user.organisation,
                             locale="", active=False)
        db.session.commit()
    assert client.get("/referrals/").status_code == 302
