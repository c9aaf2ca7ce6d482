"""Test run: a draft on sample answers in a sandbox — the route, forms, services and timers,
and nothing written or sent."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.referrals.models import Referral, ReferralTarget
from app.sms.models import OutboxMessage
from app.workflow import services as workflow
from app.workflow.models import WorkflowInstance
from tests import factories

KEY = "cp_referral"
ANSWERS = {
    "consent": {"consent_given": "yes", "given_by": "caregiver", "shared_information": ["needs_summary"],
                "organisation_scope": "any_selected", "purpose": ["service_provision"]},
    "person": {"case_code": "CP-T1", "age": "12", "sex": "female", "languages": ["es"], "status": "migrant",
               "location": "ve/zulia/maracaibo"},
    "cp_intake": {"separated": "yes", "unaccompanied": "no", "caregiver_informed": "yes",
                  "caregiver_contact": "Aunt", "child_risks": ["neglect"], "trafficking_indicators": "no",
                  "needs": ["case_management", "family_tracing"], "reason": "Test."},
    "safety_assessment": {"immediate_danger": "no", "medical_emergency": "no", "caseworker_urgency": "normal"},
}


@pytest.fixture
def coordinator(client, app):
    from app.directory.demo import seed_demo_directory

    with app.app_context():
        seed_demo_directory()
        workflow.publish_directory()
        user = factories.user("coordinator")
        db.session.commit()
        email = user.email
    client.login(email)
    client.post_form(f"/studio/{KEY}/draft")
    return client


def _run(client, answers: dict, **extra):
    return client.post_form(f"/studio/{KEY}/test-run", {"answers": json.dumps(answers), "action": "run", **extra})


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).replace("&#34;", '"')


def test_a_first_visit_runs_to_the_first_step(coordinator):
    page = coordinator.get(f"/studio/{KEY}/test-run")
    assert page.status_code == 200
    text = _text(page)
    assert "Runs the draft on sample answers." in text
    assert "Waiting for the answers of" in text and "(ask_consent), form consent" in text


def test_a_full_run_shows_route_forms_services_and_timers_and_writes_nothing(coordinator, app):
    page = _run(coordinator, ANSWERS)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "(select_services), form select_services" in _text(page)
    offered = re.findall(r'name="chosen_services"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="chosen_services"', html)
    service_id = next(a or b for a, b in offered)
    # The coordinator answers the waiting step on the page; it is added to the answers.
    page = coordinator.post_form(f"/studio/{KEY}/test-run", {
        "answers": json.dumps(ANSWERS), "action": "continue", "step": "select_services",
        "chosen_services": service_id, "selection_note": ""})
    text = _text(page)
    assert "(review), form review" in text
    answers = json.loads(re.search(r'<textarea id="answers"[^>]*>(.*?)</textarea>', page.get_data(as_text=True),
                                   re.S).group(1).replace("&#34;", '"'))
    assert answers["select_services"]["chosen_services"] == [service_id]
    answers["review"] = {"confirm_send": "yes"}
    page = _run(coordinator, answers)
    text = _text(page)
    route = re.search(r'<ol id="test-run-route"[^>]*>(.*?)</ol>', page.get_data(as_text=True), re.S).group(1)
    steps = re.findall(r'data-element-id="([^"]+)"', route)
    for step in ("ask_consent", "person", "cp_intake", "safety", "select_services", "review", "notify_services"):
        assert step in steps, step
    assert steps.index("person") < steps.index("cp_intake") < steps.index("review")
    forms = re.search(r"<p id=\"test-run-forms\">(.*?)</p>", page.get_data(as_text=True), re.S).group(1)
    assert re.findall(r"<code>(\w+)</code>", forms) == ["consent", "person", "cp_intake", "safety_assessment",
                                                         "select_services", "review"]
    assert "would send to 1 services" in text
    assert "Waiting for something outside the pathway" in text
    timers = re.search(r'<ul id="test-run-timers">(.*?)</ul>', page.get_data(as_text=True), re.S).group(1)
    assert "reminder_due" in timers and "deadline_due" in timers
    assert timers.count("→") == 2, "each timer says when it would fire"
    with app.app_context():
        for model in (Referral, ReferralTarget, OutboxMessage, WorkflowInstance):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0, model


def test_bad_answers_are_shown_next_to_their_field(coordinator):
    answers = {**ANSWERS, "person": {**ANSWERS["person"], "age": "two hundred"}}
    page = _run(coordinator, answers)
    assert page.status_code == 422
    text = _text(page)
    assert "(person), form person" in text and "Please correct the answers marked below." in text


def test_answers_that_are_not_a_mapping_are_refused_clearly(coordinator):
    page = coordinator.post_form(f"/studio/{KEY}/test-run", {"answers": "[1, 2", "action": "run"})
    assert page.status_code == 422 and "not valid JSON or YAML" in _text(page)
    page = coordinator.post_form(f"/studio/{KEY}/test-run", {"answers": "[1, 2]", "action": "run"})
    assert page.status_code == 422 and "must map each step id" in _text(page)


def test_a_draft_with_problems_cannot_be_test_run(coordinator):
    xml = coordinator.get(f"/studio/{KEY}/draft/files/cp_referral.bpmn").get_data(as_text=True)
    broken = re.sub(r"(<bpmn:conditionExpression[^>]*>)[^<]+", r"\1__import__('os')", xml, count=1)
    response = coordinator.post(f"/studio/{KEY}/draft/files/cp_referral.bpmn", json={"xml": broken, "revision": 1},
                                headers={"X-CSRFToken": coordinator.csrf_token()})
    assert response.status_code == 200 and response.get_json()["problems"]
    text = _text(coordinator.get(f"/studio/{KEY}/test-run"))
    assert "The draft has problems; fix them before a test run." in text
