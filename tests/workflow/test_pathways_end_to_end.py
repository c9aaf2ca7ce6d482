"""Every pathway in workflows/ runs end to end, through the real services, on every branch
its scenarios describe. A pathway without scenarios fails the suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from werkzeug.datastructures import MultiDict

from app.extensions import db
from app.formkit import build_form, get_definition
from app.formkit.choices import field_choices
from app.inbox.services import accept_target
from app.referrals import services as referrals
from app.workflow import services as workflow
from app.workflow.specs import discover_pathways
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = Path(__file__).parent / "scenarios"


def _scenarios():
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for name, scenario in data["scenarios"].items():
            yield pytest.param(data["pathway"], scenario, id=f"{data['pathway']}:{name}")


def test_every_pathway_has_scenarios():
    pathways = set(discover_pathways(ROOT / "workflows"))
    covered = {yaml.safe_load(p.read_text())["pathway"] for p in SCENARIO_DIR.glob("*.yaml")}
    assert pathways, "no pathway found in workflows/"
    assert pathways <= covered, f"pathways without scenarios: {sorted(pathways - covered)}"


def _formdata(answers: dict) -> MultiDict:
    items = []
    for key, value in answers.items():
        for item in value if isinstance(value, list) else [value]:
            items.append((key, str(item)))
    return MultiDict(items)


@pytest.mark.parametrize("pathway_key,scenario", list(_scenarios()))
def test_pathway_scenario(app, pathway_key, scenario):
    with app.app_context(), app.test_request_context(method="POST"):
        app.config["WTF_CSRF_ENABLED"] = False
        try:
            _run(pathway_key, scenario)
        finally:
            app.config["WTF_CSRF_ENABLED"] = True


def _resolve_tokens(answers: dict, definition) -> dict:
    """``"@matches:N"`` picks the first N offered choices of that field; ``"@none"`` none."""
    resolved = {}
    for key, value in answers.items():
        if isinstance(value, str) and value.startswith("@"):
            field = definition.field(key)
            offered = [v for v, _label in field_choices(field)]
            if value == "@none":
                value = []
            else:
                count = int(value.split(":")[1])
                assert len(offered) >= count, f"{key}: only {len(offered)} choices offered, wanted {count}"
                value = offered[:count]
        resolved[key] = value
    return resolved


def _run(pathway_key: str, scenario: dict) -> None:
    from app.directory.demo import seed_demo_directory

    seed_demo_directory()
    workflow.publish_directory()
    user = factories.user("caseworker")
    referral = referrals.start_referral(user, pathway_key)
    steps = []
    while (current := referrals.current_step(user, referral)) is not None:
        task = current.task
        steps.append(task.spec_name)
        assert len(steps) <= 50, "pathway does not end"
        definition = get_definition(task.form_key)
        answers = scenario["answers"].get(task.spec_name, scenario["answers"].get(task.form_key))
        assert answers is not None, f"no scripted answers for step {task.spec_name} / form {task.form_key}"
        bound = build_form(definition, formdata=_formdata(_resolve_tokens(answers, definition)))
        assert bound.validate(), f"{task.form_key}: {bound.form.errors}"
        referrals.submit_step(user, referral, task.task_uuid, referral.instance.revision,
                              answers=bound.answers(), workflow_data=bound.workflow_data())
    db.session.commit()

    assert steps == scenario["steps"]
    assert referral.status.value == scenario.get("status", "completed")
    if referral.status.value == "waiting":
        # The pathway follows the answers: it ends once every service has answered.
        assert not referral.instance.completed
        for target in referral.targets:
            if target.status.value == "pending":
                accept_target(None, target, channel="sms")
        db.session.commit()
        assert workflow.fire_due_timers() == 1
        db.session.refresh(referral)
        assert referral.status.value == "completed"
    assert referral.instance.completed
    data = json.loads(referral.instance.state)["data"]
    for key, expected in scenario.get("expect", {}).items():
        assert data.get(key) == expected, (key, data.get(key))
    for key in scenario.get("expect_keys", []):
        assert data.get(key) not in (None, "", []), f"{key} missing from the pathway's data"
    if "targets" in scenario:
        assert len(referral.targets) == scenario["targets"]
    state = json.dumps(json.loads(referral.instance.state), ensure_ascii=False)  # compare text, not escapes
    for secret in scenario.get("personal_never_in_state", []):
        assert secret not in state, "personal data leaked into workflow state"
    stored = " ".join(json.dumps(s.answers, ensure_ascii=False) for s in referrals.submissions(referral))
    for secret in scenario.get("personal_never_in_state", []):
        assert secret in stored, "personal answer lost"
