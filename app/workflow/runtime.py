"""Running a workflow in memory: create, load, step, complete, go back, dump.

Pure engine operations — no database. The services module wraps these in transactions.
State is stored without its spec (the spec lives once per pathway version), and the safe
script engine is attached on every load because SpiffWorkflow does not serialize it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from app.core.db import utcnow
from app.workflow.lint import properties
from app.workflow.safe_eval import make_script_engine
from app.workflow.specs import SERIALIZER, deserialize_specs

_SPEC_KEYS = ("spec", "subprocess_specs")


class _AppClock(datetime):
    """SpiffWorkflow's timers read ``datetime.now``: make it the app's clock (``utcnow``), so the
    engine and the app agree on the time, and a test that moves one moves both."""

    @classmethod
    def now(cls, tz=None):
        now = utcnow()
        return now.astimezone(tz) if tz is not None else now.astimezone().replace(tzinfo=None)


_timer_module.datetime = _AppClock


class TaskNotReady(Exception):
    """The task was already completed, undone, or never existed — nothing was applied."""


class CannotGoBack(Exception):
    """The pathway does not allow going back from here."""


@dataclass(frozen=True)
class ReadyTask:
    """A human task waiting for someone, as the app sees it."""

    uuid: str
    name: str
    title: str
    form_key: str | None
    lane: str | None
    allow_back: bool
    instructions: str | None = None
    #: Name of an extra panel shown above the form (task property ``panel``).
    panel: str | None = None


@lru_cache(maxsize=64)
def _spec_dicts(spec_json: str) -> tuple[str, str]:
    data = json.loads(spec_json)
    return json.dumps(data["spec"]), json.dumps(data["subprocess_specs"])


@lru_cache(maxsize=64)
def _spec_objects(spec_json: str):
    return deserialize_specs(spec_json)


def new_workflow(spec_json: str) -> BpmnWorkflow:
    """A fresh workflow for a pathway version, run up to its first wait."""
    spec, subprocess_specs = _spec_objects(spec_json)
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=make_script_engine())
    advance(workflow)
    return workflow


def load_workflow(spec_json: str, state: str) -> BpmnWorkflow:
    """Rebuild a stored workflow, re-joining its version's spec and the safe engine."""
    data = json.loads(state)
    spec, subprocess_specs = _spec_dicts(spec_json)
    data["spec"] = json.loads(spec)
    data["subprocess_specs"] = json.loads(subprocess_specs)
    SERIALIZER.migrate(data)
    workflow = SERIALIZER.from_dict(data)
    workflow.script_engine = make_script_engine()
    return workflow


def dump_workflow(workflow: BpmnWorkflow) -> str:
    """Serialize the workflow's state without its spec."""
    data = json.loads(SERIALIZER.serialize_json(workflow))
    for key in _SPEC_KEYS:
        data.pop(key, None)
    return json.dumps(data, separators=(",", ":"))


def advance(workflow: BpmnWorkflow) -> None:
    """Run engine steps; timers are refreshed first so a due timer actually fires."""
    workflow.refresh_timers()
    workflow.do_engine_steps()


def _as_ready(task) -> ReadyTask:
    spec = task.task_spec
    props = properties(spec)
    return ReadyTask(
        uuid=str(task.id),
        name=getattr(spec, "bpmn_id", None) or spec.name,  # not "<id> [child]" for loop tasks
        title=getattr(spec, "bpmn_name", None) or spec.name,
        form_key=props.get("formKey"),
        lane=getattr(spec, "lane", None),
        allow_back=props.get("allowBack", "true").lower() != "false",
        instructions=props.get("instructions"),
        panel=props.get("panel"),
    )


def ready_user_tasks(workflow: BpmnWorkflow) -> list[ReadyTask]:
    """Human tasks that are ready now, in workflow order."""
    return [_as_ready(t) for t in workflow.get_tasks(state=TaskState.READY, manual=True)]


def _find_ready(workflow: BpmnWorkflow, uuid: str):
    for task in workflow.get_tasks(state=TaskState.READY, manual=True):
        if str(task.id) == uuid:
            return task
    raise TaskNotReady(uuid)


def task_data(workflow: BpmnWorkflow, uuid: str) -> dict:
    """The data the task sees (answers of earlier steps that were shared with the workflow)."""
    return dict(_find_ready(workflow, uuid).data)


def ready_task(workflow: BpmnWorkflow, uuid: str) -> tuple[ReadyTask, dict]:
    """A ready human task and the data it sees."""
    task = _find_ready(workflow, uuid)
    return _as_ready(task), dict(task.data)


def complete_user_task(workflow: BpmnWorkflow, uuid: str, data: dict,
                       reference: tuple[str, int] | None = None) -> ReadyTask:
    """Put ``data`` into the ready task, complete it and run the engine to the next wait.

    ``reference`` is (step, submission id): where the full answers, personal data included,
    are kept in the app's own tables. It is collected under ``submissions`` in task data.
    """
    task = _find_ready(workflow, uuid)
    info = _as_ready(task)
    if reference is not None:
        data = {**data, "submissions": {**task.data.get("submissions", {}), reference[0]: reference[1]}}
    task.set_data(**data)
    task.run()
    advance(workflow)
    return info


def previous_user_task(workflow: BpmnWorkflow, uuid: str):
    """The most recently completed human task before ready task ``uuid``, or None."""
    current = _find_ready(workflow, uuid)
    if not _as_ready(current).allow_back:
        return None
    completed = [
        t for t in workflow.get_tasks(state=TaskState.COMPLETED, manual=True)
        if t.last_state_change <= current.last_state_change
    ]
    if not completed:
        return None
    previous = max(completed, key=lambda t: t.last_state_change)
    return previous if _as_ready(previous).allow_back else None


def go_back(workflow: BpmnWorkflow, uuid: str) -> ReadyTask:
    """Reset the workflow to the human task before ``uuid``; returns that task, ready again."""
    previous = previous_user_task(workflow, uuid)
    if previous is None:
        raise CannotGoBack(uuid)
    info = _as_ready(previous)
    workflow.reset_from_task_id(previous.id)
    advance(workflow)
    return info


def next_timer_due(workflow: BpmnWorkflow) -> datetime | None:
    """When the earliest waiting timer fires (None when no timer waits)."""
    due: list[datetime] = []
    for event in workflow.waiting_events():
        value = event.value
        if event.event_type == "CycleTimerEventDefinition" and isinstance(value, dict):
            value = value.get("next")
        if not value or "Timer" not in event.event_type and "TimeDate" not in event.event_type:
            continue
        try:
            when = TimerEventDefinition.get_datetime(value)
        except (TypeError, ValueError):
            continue
        due.append(when if when.tzinfo else when.replace(tzinfo=UTC))
    return min(due) if due else None


def deliver_message(workflow: BpmnWorkflow, name: str, payload: dict | None = None) -> bool:
    """Give the workflow the message ``name`` (e.g. ``targets_changed``) and run it on.

    Returns False, changing nothing, when no task waits for that message (the process moved
    on, or it runs on a version that does not wait for it).
    """
    try:
        workflow.send_event(BpmnEvent(MessageEventDefinition(name), payload or {}))
    except WorkflowException:
        return False
    advance(workflow)
    return True


def current_data(workflow: BpmnWorkflow) -> dict:
    """What the workflow knows now: the data of its waiting and ready tasks (sub-processes
    included), the deepest last — e.g. the answers that chose the services."""
    data: dict = {}
    tasks = workflow.get_tasks(state=TaskState.WAITING | TaskState.READY)
    for task in sorted(tasks, key=lambda t: t.depth):
        data.update(task.data)
    return data


def cancel(workflow: BpmnWorkflow) -> None:
    """Stop the workflow: nothing more runs, no task stays ready."""
    workflow.cancel()


def is_completed(workflow: BpmnWorkflow) -> bool:
    return workflow.is_completed()


def workflow_data(workflow: BpmnWorkflow) -> dict:
    """The workflow's final (or current) data, e.g. the decisions a pathway made."""
    return dict(workflow.data)
