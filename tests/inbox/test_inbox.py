"""The provider's web inbox: only their organisation's referrals, one answer wins, consented
details after acceptance (audited), outcomes back to the caseworker."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import Role, User
from app.extensions import db
from app.referrals.models import Referral, ReferralTarget, TargetStatus
from tests import factories
from tests.concurrency import run_together
from tests.referrals.helpers import submit
from tests.referrals.test_protection_referrals import (
    CONSENT_ANY,
    _offered,
    _ok,
    _setup,
    _start,
    _walk_to_selection,
)


def _sent_referral(app, client, login_as, consent=CONSENT_ANY) -> tuple[int, list[int]]:
    _setup(app)
    login_as("caseworker")
    rid = _start(client, "gbv_referral")
    page = _walk_to_selection(client, rid, consent=consent)
    _ok(submit(client, rid, {"chosen_services": _offered(page)[:2]}, page_html=page))
    _ok(submit(client, rid, {"confirm_send": "yes"}))
    client.post_form("/logout")
    with app.app_context():
        return rid, [t.id for t in db.session.get(Referral, rid).targets]


def _provider_of(app, target_id: int) -> str:
    with app.app_context():
        org_id = db.session.get(ReferralTarget, target_id).organisation_id
        user = db.session.scalar(select(User).where(User.organisation_id == org_id, User.role == Role.provider))
        user.password_hash, user.locale = factories._password_hash(), ""  # pages in English
        db.session.commit()
        return user.email


def test_provider_sees_only_their_organisations_referrals(app, client, login_as):
    _rid, (first, second) = _sent_referral(app, client, login_as)
    client.login(_provider_of(app, first))
    inbox = client.get("/inbox/").get_data(as_text=True)
    with app.app_context():
        mine = db.session.get(ReferralTarget, first)
        other = db.session.get(ReferralTarget, second)
        assert mine.code in inbox
        if other.organisation_id != mine.organisation_id:
            assert other.code not in inbox
            assert client.get(f"/inbox/{second}").status_code == 404
    client.post_form("/logout")
    login_as("provider")  # a provider of an unrelated organisation
    assert client.get(f"/inbox/{first}").status_code == 404
    assert client.post_form(f"/inbox/{first}/accept").status_code == 404


def test_details_only_after_accepting_and_only_what_consent_shares(app, client, login_as):
    consent = {**CONSENT_ANY, "shared_information": ["needs_summary"]}  # not identity, not contact
    rid, (target_id, _) = _sent_referral(app, client, login_as, consent=consent)
    client.login(_provider_of(app, target_id))
    before = client.get(f"/inbox/{target_id}").get_data(as_text=True)
    assert "Needs a safe place this week." not in before
    _ok(client.post_form(f"/inbox/{target_id}/accept"))
    after = client.get(f"/inbox/{target_id}").get_data(as_text=True)
    assert "Needs a safe place this week." in after  # the reason: needs summary
    assert "Ana Example" not in after  # the name: identity was not shared
    with app.app_context():
        views = db.session.scalars(select(AuditEvent).where(
            AuditEvent.referral_id == rid, AuditEvent.action == "referral.viewed")).all()
        assert any(v.detail.get("page") == "provider" and "reason" in v.detail["fields"] for v in views)


def test_decline_with_a_reason_reaches_the_caseworker(app, client, login_as):
    rid, (target_id, _) = _sent_referral(app, client, login_as)
    client.login(_provider_of(app, target_id))
    missing = client.post_form(f"/inbox/{target_id}/decline", {"note": "x"})
    assert missing.status_code == 422 and 'aria-invalid="true"' in missing.get_data(as_text=True)
    _ok(client.post_form(f"/inbox/{target_id}/decline", {"reason": "no_capacity", "note": "Full until May"}))
    again = client.post_form(f"/inbox/{target_id}/accept")
    assert again.status_code == 409 and "already answered" in again.get_data(as_text=True)
    with app.app_context():
        target = db.session.get(ReferralTarget, target_id)
        assert (target.status, target.decline_reason, target.response_channel) == (
            TargetStatus.declined, "no_capacity", "web")


def test_outcome_is_recorded_after_accepting(app, client, login_as):
    _rid, (target_id, _) = _sent_referral(app, client, login_as)
    client.login(_provider_of(app, target_id))
    assert client.post_form(f"/inbox/{target_id}/outcome", {"outcome": "service_provided"}).status_code == 409
    _ok(client.post_form(f"/inbox/{target_id}/accept"))
    _ok(client.post_form(f"/inbox/{target_id}/outcome", {"outcome": "service_provided", "note": "Done"}))
    with app.app_context():
        assert db.session.get(ReferralTarget, target_id).outcome == "service_provided"


def test_concurrent_answers_one_winner(app, client, login_as):
    _rid, (target_id, _) = _sent_referral(app, client, login_as)
    email = _provider_of(app, target_id)
    racers = 6

    def race(index: int, go):
        from tests.conftest import Client

        racer = Client(app)
        racer.login(email)
        token = racer.csrf_token()
        go()
        url = f"/inbox/{target_id}/accept" if index % 2 else f"/inbox/{target_id}/decline"
        return racer.post(url, data={"csrf_token": token, "reason": "other"}).status_code

    statuses = run_together(racers, race)
    assert sorted(statuses) == [302] + [409] * (racers - 1)
    with app.app_context():
        answers = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.in_(["target.accepted", "target.declined"])))
        assert answers == 1


def test_caseworker_sees_the_answer(app, client, login_as):
    rid, (target_id, _) = _sent_referral(app, client, login_as)
    client.login(_provider_of(app, target_id))
    _ok(client.post_form(f"/inbox/{target_id}/decline", {"reason": "not_eligible"}))
    client.post_form("/logout")
    with app.app_context():
        caseworker = db.session.get(Referral, rid).created_by.email
    client.login(caseworker)
    detail = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Declined" in detail and "not eligible" in detail
    assert re.search(r"The service declined the referral", detail)
