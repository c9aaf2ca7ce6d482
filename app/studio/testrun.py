"""Test run: a draft (or the current version) run on sample answers, in a sandbox.

Nothing is stored and nothing is sent: the workflow runs in memory, service tasks run their
previews. Answers are kept as typed ({step id: {field: value}}) and go through each step's
form again on every run, exactly as a caseworker's would; the page carries them as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import yaml
from flask import g
from flask_wtf.csrf import generate_csrf
from werkzeug.datastructures import MultiDict

from app.formkit import BoundForm, build_form, get_definition
from app.studio.models import PathwayDraft
from app.workflow import sandbox
from app.workflow import services as workflow
from app.workflow.models import Pathway

#: Answers pasted or carried by the page are at most this long.
MAX_ANSWERS_CHARS = 200_000


class AnswersInvalid(ValueError):
    """The answers text is not a JSON or YAML mapping of step id -> answers."""


@dataclass
class TestRunView:
    """What the test-run page shows."""

    source: str  # "draft" | "version"
    answers: dict
    run: sandbox.SandboxRun | None = None
    problems: list = field(default_factory=list)
    #: The form of the step the run stopped at (pre-filled and with errors when answers were bad).
    form: BoundForm | None = None

    @property
    def answers_json(self) -> str:
        return json.dumps(self.answers, indent=2, ensure_ascii=False, sort_keys=True)


def parse_answers(text: str | None) -> dict:
    """Answers from the page: a JSON or YAML mapping of step id (or form key) -> answers."""
    if not text or not text.strip():
        return {}
    if len(text) > MAX_ANSWERS_CHARS:
        raise AnswersInvalid(f"answers are limited to {MAX_ANSWERS_CHARS} characters")
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise AnswersInvalid(f"answers are not valid JSON or YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise AnswersInvalid("answers must map each step id to its answers, e.g. {\"person\": {\"age\": \"30\"}}")
    return {str(k): {str(f): v for f, v in answers.items()} for k, answers in data.items()}


def _formdata(answers: dict) -> MultiDict:
    pairs = [("csrf_token", generate_csrf())]
    for name, value in answers.items():
        values = value if isinstance(value, list) else [value]
        pairs += [(name, "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for v in values]
    return MultiDict(pairs)


def spec_for(pathway: Pathway, draft: PathwayDraft | None) -> tuple[str | None, str, list]:
    """(spec JSON, source, problems): the draft's when there is one, else the current version's."""
    if draft is not None:
        from app.studio.services import check_draft

        result = check_draft(draft)
        if not result.ok:
            return None, "draft", result.problems
        return workflow.serialize_specs(result.parsed), "draft", []
    version = workflow.current_version(pathway)
    return (version.spec_json if version else None), "version", []


def test_run(pathway: Pathway, draft: PathwayDraft | None, answers: dict,
             step: str | None = None, posted: MultiDict | None = None) -> TestRunView:
    """Run the pathway on ``answers``; ``posted`` answers the step ``step`` first (its form
    as the coordinator filled it on the page)."""
    spec_json, source, problems = spec_for(pathway, draft)
    view = TestRunView(source, dict(answers), problems=problems)
    if spec_json is None:
        return view
    pending: dict[str, BoundForm] = {}

    def answer_for(task, seen: dict) -> dict | None:
        definition = get_definition(task.form_key) if task.form_key else None
        if definition is None:
            return None
        g.pathways_step_data = seen  # choices that depend on earlier answers (matching services)
        if posted is not None and step == task.name:
            bound = build_form(definition, formdata=posted)
            if not bound.validate():
                pending[task.name] = bound
                return None
            view.answers[task.name] = bound.raw_data()
        given = view.answers.get(task.name, view.answers.get(task.form_key))
        if given is None:
            pending[task.name] = build_form(definition, formdata=MultiDict())
            return None
        bound = build_form(definition, formdata=_formdata(given))
        if not bound.validate():
            pending[task.name] = bound
            return None
        return bound.workflow_data()

    view.run = sandbox.run(spec_json, answer_for)
    if view.run.waiting is not None:
        view.form = pending.get(view.run.waiting.name)
    g.pop("pathways_step_data", None)
    return view
