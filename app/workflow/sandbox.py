"""Test-run a pathway in memory: no database, no referral, no SMS.

The studio gives a version's spec and the answers of its user tasks (by task id); the run
completes each user task that has answers, in order, and stops at the first that has none
(the coordinator fills it next), at the end, or when the workflow waits for something else
(a provider's answer, a timer). Service tasks run their previews
(:func:`app.workflow.service_tasks.sandboxed`). The result says which way the pathway went,
which forms it showed, what the service tasks would have done and which timers it set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from app.workflow import runtime, service_tasks
from app.workflow.lint import properties

#: A run that completes more user tasks than this stops (a loop the answers never leave).
MAX_USER_TASKS = 100

# Spiff's internal task specs that are not elements of the diagram.
_INTERNAL = ("Start", "End", "Root")


@dataclass
class RouteStep:
    """An element of the diagram the run went through, in order."""

    element_id: str
    name: str
    kind: str
    form_key: str | None = None


@dataclass
class TimerSet:
    """A timer the workflow waits on when the run stops."""

    element_id: str
    name: str
    expression: str
    due: datetime | None


@dataclass
class SandboxRun:
    route: list[RouteStep] = field(default_factory=list)
    calls: list[service_tasks.SandboxCall] = field(default_factory=list)
    timers: list[TimerSet] = field(default_factory=list)
    #: The user task waiting for answers (None when finished, failed or waiting on events).
    waiting: runtime.ReadyTask | None = None
    #: The data that task sees (for choices that depend on earlier answers).
    waiting_data: dict = field(default_factory=dict)
    finished: bool = False
    error: str | None = None
    error_element: str | None = None
    data: dict = field(default_factory=dict)

    @property
    def forms(self) -> list[str]:
        return [step.form_key for step in self.route if step.form_key]


#: Gives the data a ready user task completes with, or None to stop there.
AnswerSource = Callable[[runtime.ReadyTask, dict], dict[str, Any] | None]


def run(spec_json: str, answer_for: AnswerSource) -> SandboxRun:
    """Run a fresh workflow of ``spec_json``; ``answer_for(task, data_it_sees)`` answers each
    user task in turn (None stops the run there, e.g. to ask the coordinator)."""
    result = SandboxRun()
    with service_tasks.sandboxed() as calls:
        workflow = None
        try:
            workflow = runtime.new_workflow(spec_json)
            for _ in range(MAX_USER_TASKS):
                ready = runtime.ready_user_tasks(workflow)
                if not ready:
                    break
                task = ready[0]
                seen = runtime.task_data(workflow, task.uuid)
                answer = answer_for(task, seen)
                if answer is None:
                    result.waiting, result.waiting_data = task, seen
                    break
                runtime.complete_user_task(workflow, task.uuid, dict(answer))
            else:
                result.error = f"stopped after {MAX_USER_TASKS} steps: the answers never leave a loop"
        except (SpiffWorkflowException, service_tasks.UnknownOperation, ValueError, TypeError,
                KeyError, NameError, AttributeError) as exc:
            result.error = _error_message(exc)
            task = getattr(exc, "task", None)
            result.error_element = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
        result.calls = list(calls)
    if workflow is not None:
        result.route = _route(workflow)
        result.timers = _timers(workflow)
        result.finished = runtime.is_completed(workflow)
        result.data = runtime.current_data(workflow) if not result.finished else runtime.workflow_data(workflow)
    return result


def _error_message(exc: Exception) -> str:
    message = str(exc.args[0]) if getattr(exc, "args", None) else str(exc)
    return f"{type(exc).__name__}: {message}"


def _kind(spec) -> str:
    return getattr(spec, "bpmn_type", None) or getattr(spec, "description", None) or type(spec).__name__


def _route(workflow) -> list[RouteStep]:
    done = [t for t in workflow.get_tasks(state=TaskState.COMPLETED)
            if getattr(t.task_spec, "bpmn_id", None) and t.task_spec.name not in _INTERNAL]
    steps = []
    for task in sorted(done, key=lambda t: t.last_state_change):
        spec = task.task_spec
        form_key = properties(spec).get("formKey") if spec.manual else None
        steps.append(RouteStep(spec.bpmn_id, spec.bpmn_name or spec.bpmn_id, _kind(spec), form_key))
    return steps


def _timers(workflow) -> list[TimerSet]:
    timers = []
    for task in workflow.get_tasks(state=TaskState.WAITING):
        spec = task.task_spec
        definition = getattr(spec, "event_definition", None)
        if not isinstance(spec, CatchingEvent) or not isinstance(definition, TimerEventDefinition):
            continue
        due = None
        event = task._get_internal_data("event_value") if hasattr(task, "_get_internal_data") else None
        if isinstance(event, dict):
            event = event.get("next")
        if event:
            try:
                due = TimerEventDefinition.get_datetime(event)
                due = due if due.tzinfo else due.replace(tzinfo=UTC)
            except (TypeError, ValueError):
                due = None
        timers.append(TimerSet(spec.bpmn_id or spec.name, spec.bpmn_name or spec.bpmn_id or spec.name,
                               definition.expression, due))
    return timers
