"""The protection pathways in the browser's way: matching services with reasons, two targets,
a child in a GBV referral starting the CP pathway, and consent enforced on the server."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.directory.models import Service
from app.extensions import db
from app.referrals.models import Referral, TargetStatus
from app.workflow import services as workflow
from tests.referrals.helpers import step_page, submit

CONSENT_ANY = {"consent_given": "yes", "given_by": "person", "shared_information": ["needs_summary"],
               "organisation_scope": "any_selected", "purpose": ["service_provision"]}
ADULT = {"case_code": "GBV-77", "full_name": "Ana Example", "age": "29", "sex": "female",
         "languages": ["es"], "status": "migrant", "location": "ve/distrito-capital/caracas"}
INTAKE = {"safe_contact": "via_caseworker", "trafficking_indicators": "no",
          "needs": ["safe_shelter", "case_management"], "reason": "Needs a safe place this week."}
SAFETY = {"immediate_danger": "no", "medical_emergency": "no", "caseworker_urgency": "urgent"}


def _setup(app):
    from app.directory.demo import seed_demo_directory

    with app.app_context():
        seed_demo_directory()
        workflow.publish_directory()
        db.session.commit()


def _start(client, pathway: str) -> int:
    response = client.post_form("/referrals/new", {"pathway": pathway})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(re.search(r"/referrals/(\d+)/step", response.headers["Location"]).group(1))


def _ok(response):
    assert response.status_code == 302, response.get_data(as_text=True)[:4000]


def _offered(page: str) -> list[str]:
    return re.findall(r'name="chosen_services" type="checkbox" value="(\d+)"', page) or re.findall(
        r'type="checkbox" value="(\d+)"[^>]*name="chosen_services"', page)


def _walk_to_selection(client, rid, person=ADULT, consent=CONSENT_ANY):
    _ok(submit(client, rid, consent))
    _ok(submit(client, rid, person))
    _ok(submit(client, rid, INTAKE))
    page = step_page(client, rid).get_data(as_text=True)
    if "confirm_cross_referral" in page:
        return page
    _ok(submit(client, rid, SAFETY))
    return step_page(client, rid).get_data(as_text=True)


def test_gbv_referral_to_two_matching_services(app, client, login_as):
    _setup(app)
    login_as("caseworker")
    rid = _start(client, "gbv_referral")
    page = _walk_to_selection(client, rid)
    assert "Services that fit" in page
    assert "Serves" in page  # each match says why it fits
    offered = _offered(page)
    assert len(offered) >= 2
    _ok(submit(client, rid, {"chosen_services": offered[:2]}, page_html=page))
    _ok(submit(client, rid, {"confirm_send": "yes"}))
    with app.app_context():
        referral = db.session.get(Referral, rid)
        assert [t.service_id for t in referral.targets] == [int(i) for i in offered[:2]]
        assert {t.status for t in referral.targets} == {TargetStatus.pending}
        assert referral.status.value == "waiting"
        assert all(t.respond_by is not None and t.urgency == "urgent" for t in referral.targets)
        names = [t.service.name for t in referral.targets]
    detail = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert detail.count("Waiting for the provider") == 2
    answers = detail.split("<h2>Answers</h2>")[1]
    assert all(name in answers for name in names)  # the chosen services read as names, not ids


def test_child_in_a_gbv_referral_starts_the_cp_pathway(app, client, login_as):
    _setup(app)
    login_as("caseworker")
    rid = _start(client, "gbv_referral")
    page = _walk_to_selection(client, rid, person={**ADULT, "age": "15"})
    assert "confirm_cross_referral" in page  # the pathway offers child protection
    _ok(submit(client, rid, {"confirm_cross_referral": "yes"}, page_html=page))
    with app.app_context():
        referral = db.session.get(Referral, rid)
        (linked,) = referral.linked
        assert linked.version.pathway.key == "cp_referral"
        assert linked.organisation_id == referral.organisation_id
        linked_id = linked.id
    detail = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Linked referrals" in detail
    assert "Informed consent" in step_page(client, linked_id).get_data(as_text=True) or \
        "consent" in step_page(client, linked_id).get_data(as_text=True).lower()


def test_consent_not_covering_an_organisation_blocks_sending_to_it(app, client, login_as):
    _setup(app)
    login_as("caseworker")
    rid = _start(client, "gbv_referral")
    consent_page = step_page(client, rid).get_data(as_text=True)
    orgs = re.findall(r'name="consent_organisations" type="checkbox" value="(\d+)"', consent_page)
    # Name only an organisation working in Poland; the Caracas services are then not covered.
    with app.app_context():
        polish = [s for s in db.session.scalars(select(Service))
                  if s.places and all(p.code.startswith("pl") for p in s.places)]
        allowed = polish[0].organisation_id
    assert str(allowed) in orgs
    consent = {**CONSENT_ANY, "organisation_scope": "named", "consent_organisations": [str(allowed)]}
    page = _walk_to_selection(client, rid, consent=consent)
    offered = _offered(page)
    with app.app_context():
        by_org = {i: db.session.get(Service, int(i)).organisation_id for i in offered}
    outside = [i for i, org in by_org.items() if org != allowed]
    assert outside, "the demo directory should offer services of other organisations here"
    refused = submit(client, rid, {"chosen_services": outside[:1]}, page_html=page)
    assert refused.status_code == 422
    assert "consent does not cover" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Referral, rid).targets == []
        assert db.session.get(Referral, rid).current_step == "Choose services"


def test_sending_rechecks_consent_on_the_server(app, client, login_as):
    """Even if consent changes after the selection, nothing goes to an uncovered organisation."""
    from app.referrals.models import Consent

    _setup(app)
    login_as("caseworker")
    rid = _start(client, "gbv_referral")
    page = _walk_to_selection(client, rid)
    offered = _offered(page)
    _ok(submit(client, rid, {"chosen_services": offered[:2]}, page_html=page))
    with app.app_context():
        consent = db.session.scalar(select(Consent).where(Consent.referral_id == rid))
        consent.organisation_scope, consent.organisation_ids = "named", []
        db.session.commit()
    _ok(submit(client, rid, {"confirm_send": "yes"}))
    with app.app_context():
        referral = db.session.get(Referral, rid)
        assert {t.status for t in referral.targets} == {TargetStatus.blocked}
        assert referral.status.value == "completed"
