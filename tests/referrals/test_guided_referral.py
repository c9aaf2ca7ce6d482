"""A caseworker is guided through the demo pathway in the browser's way: GET, POST, redirect."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.extensions import db
from app.referrals.models import Referral, StepDraft
from tests.referrals.helpers import ADULT, publish_demo, start, step_page, submit


def _walk(client, rid, answers_by_form):
    for form_key in answers_by_form:
        response = submit(client, rid, answers_by_form[form_key])
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]


def test_new_referral_page_lists_published_pathways(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    page = client.get("/referrals/new").get_data(as_text=True)
    assert "Demo protection referral" in page


def test_complete_the_demo_pathway(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    page = step_page(client, rid).get_data(as_text=True)
    assert "Has the person given informed consent" in page
    _walk(client, rid, ADULT)
    detail = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert "Completed" in detail
    assert "Maria Example" in detail  # the caseworker sees the answers …
    with app.app_context():
        referral = db.session.get(Referral, rid)
        assert referral.status.value == "completed"
        actions = [e.action for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.referral_id == rid).order_by(AuditEvent.id))]
    assert actions[0] == "referral.started"
    assert actions.count("step.completed") == 4
    assert "referral.completed" in actions
    assert "referral.viewed" in actions  # … and that view is audited


def test_invalid_answers_are_shown_next_to_the_field_and_nothing_moves(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    _walk(client, rid, {"demo_consent": ADULT["demo_consent"]})
    response = submit(client, rid, {**ADULT["demo_person"], "age": "200", "case_code": ""})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html
    assert "Maria Example" in html  # what was typed is kept
    with app.app_context():
        assert db.session.get(Referral, rid).current_step == "About the person"


def test_conditional_question_appears_without_javascript(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    page = step_page(client, rid).get_data(as_text=True)
    from tests.referrals.helpers import hidden

    data = {"task": hidden(page, "task"), "revision": hidden(page, "revision"),
            "csrf_token": hidden(page, "csrf_token"), "action": "next",
            "formkit_shown": "consent_given,consent_notes", "consent_given": "yes"}
    response = client.post(f"/referrals/{rid}/step", data=data)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "More questions appeared" in html
    assert "Who gave consent?" in html


def test_save_draft_and_resume_later(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    _walk(client, rid, {"demo_consent": ADULT["demo_consent"]})
    response = submit(client, rid, {"case_code": "RPC-9", "full_name": "Half Done", "age": "abc"},
                      action="draft")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(StepDraft).where(StepDraft.referral_id == rid)) is not None
    page = step_page(client, rid).get_data(as_text=True)
    assert "Resuming your saved draft" in page
    assert "Half Done" in page and 'value="abc"' in page
    _walk(client, rid, {"demo_person": ADULT["demo_person"]})
    with app.app_context():
        assert db.session.scalar(select(StepDraft).where(StepDraft.referral_id == rid)) is None


def test_back_to_previous_step_keeps_answers(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    _walk(client, rid, {k: ADULT[k] for k in ("demo_consent", "demo_person")})
    assert "Which services" in step_page(client, rid).get_data(as_text=True)
    response = submit(client, rid, {}, action="back")
    assert response.status_code == 302
    page = step_page(client, rid).get_data(as_text=True)
    assert "About the person" in page and "Maria Example" in page
    _walk(client, rid, {k: ADULT[k] for k in ("demo_person", "demo_needs", "demo_review")})
    with app.app_context():
        referral = db.session.get(Referral, rid)
        assert referral.status.value == "completed"
        from app.referrals.services import submissions

        assert [s.step for s in submissions(referral)] == ["consent", "person", "needs", "review"]


def test_consent_refused_ends_the_referral(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    _walk(client, rid, {"demo_consent": {"consent_given": "no"}})
    with app.app_context():
        assert db.session.get(Referral, rid).status.value == "completed"


def test_my_referrals_filters_and_pages(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    ids = [start(client) for _ in range(23)]
    _walk(client, ids[0], {"demo_consent": {"consent_given": "no"}})
    client.post_form(f"/referrals/{ids[1]}/cancel")
    first = client.get("/referrals/").get_data(as_text=True)
    assert "23 referrals" in first and "Page 1 of 2" in first
    assert "Page 2 of 2" in client.get("/referrals/?page=2").get_data(as_text=True)
    completed = client.get("/referrals/?status=completed").get_data(as_text=True)
    assert "1 referral" in completed and "1 referrals" not in completed
    cancelled = client.get("/referrals/?status=cancelled").get_data(as_text=True)
    assert "1 referral" in cancelled
    in_progress = client.get("/referrals/?status=in_progress").get_data(as_text=True)
    assert "21 referrals" in in_progress


def test_cancelled_referral_has_no_step(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    assert client.post_form(f"/referrals/{rid}/cancel").status_code == 302
    response = client.get(f"/referrals/{rid}/step")
    assert response.status_code == 302
    assert client.post_form(f"/referrals/{rid}/cancel").status_code == 403


def test_step_whose_form_disappeared_shows_a_clear_page(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    forms = app.extensions["formkit"]
    removed = forms.pop("demo_consent")
    try:
        response = step_page(client, rid)
    finally:
        forms["demo_consent"] = removed
    assert response.status_code == 503
    assert "its form is missing" in response.get_data(as_text=True)
    assert step_page(client, rid).status_code == 200
