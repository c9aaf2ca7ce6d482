"""One transaction per step: an interrupted submission leaves nothing behind, and two
submissions of the same step apply once."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from app.audit.models import AuditEvent
from app.extensions import db
from app.referrals.models import FormSubmission, Referral
from app.workflow import services as workflow
from app.workflow.models import WorkflowInstance, WorkflowTask
from tests.concurrency import run_together
from tests.referrals.helpers import ADULT, publish_demo, start, step_page, submit


def _snapshot(app, rid):
    with app.app_context():
        referral = db.session.get(Referral, rid)
        instance = referral.instance
        return {
            "state": instance.state,
            "revision": instance.revision,
            "status": referral.status,
            "step": referral.current_step,
            "tasks": sorted((t.task_uuid, t.state) for t in instance.tasks),
            "submissions": db.session.scalar(select(func.count()).select_from(FormSubmission)),
            "audit": db.session.scalar(select(func.count()).select_from(AuditEvent)
                                       .where(AuditEvent.referral_id == rid)),
        }


def test_submission_interrupted_before_commit_leaves_the_referral_as_before(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    submit(client, rid, ADULT["demo_consent"])
    page = step_page(client, rid).get_data(as_text=True)
    before = _snapshot(app, rid)

    def crash(sender, **kwargs):
        raise RuntimeError("power cut between the engine step and the commit")

    workflow.instance_advanced.connect(crash)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            submit(client, rid, ADULT["demo_person"], page_html=page)
    finally:
        workflow.instance_advanced.disconnect(crash)

    assert _snapshot(app, rid) == before
    # And the same page can be submitted again afterwards.
    assert submit(client, rid, ADULT["demo_person"], page_html=page).status_code == 302
    assert _snapshot(app, rid)["submissions"] == before["submissions"] + 1


def test_double_submission_of_a_step_applies_once(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    page = step_page(client, rid).get_data(as_text=True)
    assert submit(client, rid, ADULT["demo_consent"], page_html=page).status_code == 302
    again = submit(client, rid, ADULT["demo_consent"], page_html=page)
    assert again.status_code == 409
    assert "already submitted" in again.get_data(as_text=True)
    assert _snapshot(app, rid)["submissions"] == 1


def test_concurrent_submissions_of_one_step_apply_once(app, client, login_as):
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    page = step_page(client, rid).get_data(as_text=True)
    with client.session_transaction() as sess:
        cookie_session = dict(sess)
    racers = 4

    def race(_index, go):
        from tests.conftest import Client

        racer = Client(app)
        with racer.http.session_transaction() as sess:
            sess.update(cookie_session)
        go()
        return submit(racer, rid, ADULT["demo_consent"], page_html=page).status_code

    statuses = run_together(racers, race)
    assert sorted(statuses) == [302] + [409] * (racers - 1)
    snap = _snapshot(app, rid)
    assert snap["submissions"] == 1
    with app.app_context():
        completed = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.referral_id == rid, AuditEvent.action == "step.completed"))
        assert completed == 1
        done = db.session.scalar(select(func.count()).select_from(WorkflowTask).where(
            WorkflowTask.state == "completed"))
        assert done == 1


def test_stale_writer_is_refused_by_the_revision(app, client, login_as):
    """Two sessions load the instance; the second writer fails instead of overwriting."""
    publish_demo(app)
    login_as("caseworker")
    rid = start(client)
    with app.app_context():
        instance_id = db.session.get(Referral, rid).instance_id
        user = db.session.get(Referral, rid).created_by
        user_id = user.id
    with app.app_context():
        first = db.session.get(WorkflowInstance, instance_id)
        uuid = workflow.ready_tasks(first)[0].task_uuid
        with app.app_context():  # a second, independent session
            second = db.session.get(WorkflowInstance, instance_id)
            assert second.revision == first.revision
            from app.auth.models import User

            workflow.complete_task(second, uuid, {"consent_given": False},
                                   db.session.get(User, user_id))
            db.session.commit()
        from app.auth.models import User

        with pytest.raises(StaleDataError):
            workflow.complete_task(first, uuid, {"consent_given": True}, db.session.get(User, user_id))
        db.session.rollback()
    with app.app_context():
        assert db.session.get(Referral, rid).instance.completed  # the first writer's answer stands
