"""Object-level permissions: a caseworker sees only their own organisation's referrals."""

from app.extensions import db
from tests import factories
from tests.referrals.helpers import ADULT, publish_demo, start, submit


def test_other_organisation_cannot_open_the_referral(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    submit(client, rid, ADULT["demo_consent"])
    client.post_form("/logout")

    login_as("caseworker")  # a caseworker of another organisation
    assert client.get(f"/referrals/{rid}").status_code == 404
    assert client.get(f"/referrals/{rid}/step").status_code == 404
    assert client.post_form(f"/referrals/{rid}/step", {"action": "next"}).status_code == 404
    assert client.post_form(f"/referrals/{rid}/cancel").status_code == 404
    assert f"/referrals/{rid}" not in client.get("/referrals/").get_data(as_text=True)


def test_colleague_in_the_same_organisation_can_continue(app, client, login_as):
    publish_demo(app)
    with app.app_context():
        org = factories.organisation()
        first = factories.user("caseworker", organisation=org)
        second = factories.user("caseworker", organisation=org)
        db.session.commit()
        emails = first.email, second.email
    client.login(emails[0])
    rid = start(client)
    client.post_form("/logout")
    client.login(emails[1])
    assert client.get(f"/referrals/{rid}").status_code == 200
    assert submit(client, rid, ADULT["demo_consent"]).status_code == 302


def test_services_check_permissions_themselves(app):
    import pytest
    from werkzeug.exceptions import Forbidden, NotFound

    from app.referrals import services

    publish_demo(app)
    with app.app_context(), app.test_request_context():
        owner = factories.user("caseworker")
        referral = services.start_referral(owner, "demo_referral")
        for role in ("provider", "coordinator", "admin"):
            with pytest.raises(Forbidden):
                services.start_referral(factories.user(role), "demo_referral")
            with pytest.raises(NotFound):
                services.get_referral(factories.user(role, organisation=owner.organisation), referral.id)
        stranger = factories.user("caseworker")
        with pytest.raises(NotFound):
            services.get_referral(stranger, referral.id)
        with pytest.raises(NotFound):
            services.submit_step(stranger, referral, "x", 1, answers={}, workflow_data={})
        db.session.rollback()
