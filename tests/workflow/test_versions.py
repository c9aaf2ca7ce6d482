"""Pathway versions: stored once, pinned per referral; state kept small; engine re-attached."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.referrals import services as referrals
from app.workflow import runtime
from app.workflow import services as workflow
from app.workflow.models import PathwayVersion
from app.workflow.safe_eval import SafeScriptEngine
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _demo(versions):
    return next(v for v in versions if v.pathway.key == "demo_referral")


@pytest.fixture
def workflows_copy(tmp_path):
    target = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", target)
    return target


def test_publishing_unchanged_files_keeps_the_version(app_ctx):
    first = workflow.publish_directory()
    again = workflow.publish_directory()
    assert [v.id for v in first] == [v.id for v in again]
    assert db.session.scalar(select(func.count()).select_from(PathwayVersion)) == len(first)


def test_running_referral_stays_on_its_version(app_ctx, workflows_copy):
    v1 = _demo(workflow.publish_directory(workflows_copy))
    user = factories.user("caseworker")
    from flask import current_app

    with current_app.test_request_context():
        old = referrals.start_referral(user, "demo_referral")
        main = workflows_copy / "demo_referral.bpmn"
        main.write_text(main.read_text().replace('name="Informed consent"', 'name="Consent (v2)"'))
        v2 = _demo(workflow.publish_directory(workflows_copy))
        assert (v1.number, v2.number) == (1, 2) and v1.content_hash != v2.content_hash
        new = referrals.start_referral(user, "demo_referral")
    assert old.version_id == v1.id and new.version_id == v2.id
    assert old.current_step == "Informed consent" and new.current_step == "Consent (v2)"
    # The old referral keeps running on v1's spec.
    task = workflow.ready_tasks(old.instance)[0]
    workflow.complete_task(old.instance, task.task_uuid, {"consent_given": False}, user)
    assert old.instance.completed


def test_instance_state_holds_no_spec(app_ctx):
    version = _demo(workflow.publish_directory())
    instance = workflow.start_instance(version)
    state = json.loads(instance.state)
    assert "spec" not in state and "subprocess_specs" not in state
    assert len(instance.state) < len(version.spec_json)


def test_engine_is_reattached_on_every_load(app_ctx):
    version = _demo(workflow.publish_directory())
    instance = workflow.start_instance(version)
    loaded = runtime.load_workflow(version.spec_json, instance.state)
    assert isinstance(loaded.script_engine, SafeScriptEngine)


def test_stored_spec_with_unsafe_code_cannot_run_after_load(app_ctx, tmp_path):
    """Even a spec that slipped past linting (edited in the database) runs in the sandbox."""
    version = _demo(workflow.publish_directory())
    marker = tmp_path / "pwned"
    version.spec_json = version.spec_json.replace(
        "is_child = age < 18", f"is_child = __import__('os').system('touch {marker}')")
    assert "__import__" in version.spec_json
    runtime._spec_dicts.cache_clear()
    runtime._spec_objects.cache_clear()
    instance = workflow.start_instance(version)
    user = factories.user("caseworker")
    for data in ({"consent_given": True, "consent_by": "person"},):
        workflow.complete_task(instance, workflow.ready_tasks(instance)[0].task_uuid, data, user)
    with pytest.raises(Exception, match="not allowed"):
        workflow.complete_task(instance, workflow.ready_tasks(instance)[0].task_uuid,
                               {"age": 30, "case_code": "X", "location": "capital"}, user)
    assert not marker.exists()
    db.session.rollback()


def test_publishing_an_invalid_pathway_is_refused_with_every_problem(app_ctx, workflows_copy):
    main = workflows_copy / "demo_referral.bpmn"
    text = main.read_text()
    text = text.replace('value="demo_child"', 'value="no_such_form"')
    text = text.replace("is_child = age &lt; 18", "is_child = open('/etc/passwd')")
    main.write_text(text)
    with pytest.raises(workflow.PathwayInvalid) as excinfo:
        workflow.publish_directory(workflows_copy)
    message = str(excinfo.value)
    assert "no_such_form" in message and "open" in message
    assert db.session.scalar(select(func.count()).select_from(PathwayVersion)) == 0


def test_cli_publish_reports_problems_and_exits_non_zero(app, workflows_copy):
    (workflows_copy / "demo_referral.bpmn").write_text("<not really xml")
    app.config["WORKFLOWS_DIR"] = str(workflows_copy)
    try:
        result = app.test_cli_runner().invoke(args=["pathways", "publish"])
    finally:
        app.config["WORKFLOWS_DIR"] = str(ROOT / "workflows")
    assert result.exit_code != 0
    assert "demo_referral.bpmn" in result.output


def test_seed_demo_twice_changes_nothing(app):
    from app.auth.models import Organisation, User

    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        counts = [db.session.scalar(select(func.count()).select_from(m))
                  for m in (Organisation, User, PathwayVersion)]
        emails = set(db.session.scalars(select(User.email)))
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0 and "0 demo records created" in second.output
    with app.app_context():
        assert [db.session.scalar(select(func.count()).select_from(m))
                for m in (Organisation, User, PathwayVersion)] == counts
    assert {"caseworker@demo.test", "coordinator@demo.test", "admin@demo.test",
            "provider.casasegura@demo.test"} <= emails


def test_reverting_the_files_publishes_the_earlier_files_as_a_new_version(app_ctx, workflows_copy):
    """Versions are immutable and numbered in publication order: going back to earlier files
    adds a version with those files (it does not move an old one to the front)."""
    main = workflows_copy / "demo_referral.bpmn"
    original = main.read_text()
    v1 = _demo(workflow.publish_directory(workflows_copy))
    main.write_text(original.replace('name="Informed consent"', 'name="Consent (v2)"'))
    v2 = _demo(workflow.publish_directory(workflows_copy))
    main.write_text(original)
    again = _demo(workflow.publish_directory(workflows_copy))
    assert (v1.number, v2.number, again.number) == (1, 2, 3)
    assert again.content_hash == v1.content_hash and again.files == v1.files
    assert workflow.current_version(v1.pathway).id == again.id
    assert _demo(workflow.publish_directory(workflows_copy)).id == again.id
