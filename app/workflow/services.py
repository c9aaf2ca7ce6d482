"""Workflow instances in the database (pathway versions: :mod:`app.workflow.versions`,
re-exported here so callers use one module).

Every write here flushes and never commits: the caller's request commits once, so the
workflow state, task rows, form data and audit events land together or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from blinker import Namespace
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from app.core.db import utcnow
from app.extensions import db
from app.workflow import runtime, service_tasks
from app.workflow.checks import CheckResult
from app.workflow.lint import SpecProblem
from app.workflow.models import PathwayVersion, WorkflowInstance, WorkflowTask
from app.workflow.specs import PathwayInvalid, serialize_specs
from app.workflow.versions import (
    PathwayRules,
    check_files,
    current_version,
    get_pathway,
    main_file_of,
    pathway_rules,
    publish_directory,
    publish_files,
    published_pathways,
    published_process_files,
    rollback,
)

log = logging.getLogger(__name__)

#: When an instance's tick fails (a bug, a broken service task), try it again this much later.
TICK_RETRY = timedelta(minutes=10)

signals = Namespace()
#: Sent after an instance changed and before the caller commits: (instance, completed_task).
instance_advanced = signals.signal("instance-advanced")

TaskNotReady = runtime.TaskNotReady
CannotGoBack = runtime.CannotGoBack


class StaleInstance(Exception):
    """The instance changed since the caller loaded it; nothing was applied."""


@dataclass
class StepOutcome:
    completed: runtime.ReadyTask
    ready: list[runtime.ReadyTask]
    finished: bool
    data: dict


# -- instances ----------------------------------------------------------------------------


def start_instance(version: PathwayVersion, user=None) -> WorkflowInstance:
    """Start a workflow on ``version`` and run it to the first human task."""
    instance = WorkflowInstance(version=version, state="{}")
    db.session.add(instance)
    db.session.flush()
    return run_new_instance(instance, user)


def run_new_instance(instance: WorkflowInstance, user=None) -> WorkflowInstance:
    """Run a new, flushed instance to its first wait (callers flush their own rows first,
    so service tasks at the very start can find them)."""
    with service_tasks.running(instance.id, getattr(user, "id", None)):
        workflow = runtime.new_workflow(instance.version.spec_json)
    _store(instance, workflow)
    return instance


def lock_instance(instance_id: int) -> WorkflowInstance:
    """Load an instance for writing: row-locked on PostgreSQL, version-checked everywhere."""
    query = select(WorkflowInstance).where(WorkflowInstance.id == instance_id)
    if db.engine.dialect.name != "sqlite":
        query = query.with_for_update()
    instance = db.session.scalar(query.execution_options(populate_existing=True))
    if instance is None:
        raise LookupError(instance_id)
    return instance


def ready_tasks(instance: WorkflowInstance) -> list[WorkflowTask]:
    """The instance's human tasks that are ready now (from the task rows, no engine load)."""
    return [t for t in instance.tasks if t.state == "ready"]


@dataclass
class StepView:
    """A ready task as the engine sees it: properties, the data it sees, whether back is allowed."""

    task: runtime.ReadyTask
    data: dict
    can_go_back: bool


def step_view(instance: WorkflowInstance, task_uuid: str) -> StepView:
    """Load the engine once and describe a ready task for showing it."""
    workflow = runtime.load_workflow(instance.version.spec_json, instance.state)
    task, data = runtime.ready_task(workflow, task_uuid)
    return StepView(task, data, runtime.previous_user_task(workflow, task_uuid) is not None)


def complete_task(instance: WorkflowInstance, task_uuid: str, data: dict, user,
                  expected_revision: int | None = None,
                  reference: tuple[str, int] | None = None) -> StepOutcome:
    """Complete a ready human task with validated ``data`` and run the engine on.

    Raises :class:`StaleInstance` when ``expected_revision`` is given and the instance moved
    on, and :class:`TaskNotReady` when the task is no longer waiting. Nothing is applied then.
    """
    if expected_revision is not None and instance.revision != expected_revision:
        raise StaleInstance(instance.id)
    workflow = runtime.load_workflow(instance.version.spec_json, instance.state)
    with service_tasks.running(instance.id, user.id):
        done = runtime.complete_user_task(workflow, task_uuid, data, reference)
    row = _task_row(instance, task_uuid)
    if row is not None:
        row.state, row.completed_by_id, row.completed_at = "completed", user.id, utcnow()
    _store(instance, workflow)
    instance_advanced.send(instance, completed=done)
    return StepOutcome(done, runtime.ready_user_tasks(workflow), instance.completed,
                       runtime.workflow_data(workflow))


def go_back(instance: WorkflowInstance, task_uuid: str,
            expected_revision: int | None = None) -> runtime.ReadyTask:
    """Return to the previous human task, where the pathway allows it."""
    if expected_revision is not None and instance.revision != expected_revision:
        raise StaleInstance(instance.id)
    workflow = runtime.load_workflow(instance.version.spec_json, instance.state)
    with service_tasks.running(instance.id, None):
        previous = runtime.go_back(workflow, task_uuid)
    for row in instance.tasks:
        if row.state == "completed" and row.task_uuid == previous.uuid:
            row.state = "reverted"
    _store(instance, workflow)
    return previous


def cancel_instance(instance: WorkflowInstance) -> None:
    """Cancel a running instance; its ready tasks are cancelled too."""
    workflow = runtime.load_workflow(instance.version.spec_json, instance.state)
    runtime.cancel(workflow)
    _store(instance, workflow)


def instance_data(instance: WorkflowInstance) -> dict:
    """What the running workflow knows now (e.g. the answers the services were matched on)."""
    return runtime.current_data(runtime.load_workflow(instance.version.spec_json, instance.state))


def poke_instance(instance_id: int, message: str) -> None:
    """Ask the worker to give the instance ``message`` on its next tick (in the caller's
    transaction). A plain UPDATE: the caller needs no lock on the instance, and a tick running
    now either finishes first (PostgreSQL row lock) or fails and is retried (SQLite), so the
    message is not lost."""
    db.session.execute(
        update(WorkflowInstance)
        .where(WorkflowInstance.id == instance_id, WorkflowInstance.completed.is_(False))
        .values(pending_message=message, next_timer_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def due_instances(now: datetime, limit: int) -> list[int]:
    """Ids of running instances with a timer (or a poke) due — an index range scan on
    ``next_timer_at``: the cost does not grow with the number of waiting instances."""
    return list(db.session.scalars(
        select(WorkflowInstance.id)
        .where(WorkflowInstance.next_timer_at <= now, WorkflowInstance.completed.is_(False))
        .order_by(WorkflowInstance.next_timer_at, WorkflowInstance.id).limit(limit)
    ))


def fire_due_timers(now: datetime | None = None, limit: int = 50) -> int:
    """The worker's timer tick: run each due instance, one transaction (and commit) each.

    A pending message is delivered first, then due timers fire and the workflow runs to its next
    wait; service tasks' writes (targets expired, reminders queued) commit with the new state.
    An instance another worker holds is skipped; one that fails is rolled back, logged and tried
    again after :data:`TICK_RETRY`. Returns how many instances were run.
    """
    now = now or utcnow()
    ran = 0
    ids = due_instances(now, limit)
    db.session.rollback()
    for instance_id in ids:
        try:
            if _tick(instance_id, now):
                ran += 1
            db.session.commit()
        except (OperationalError, StaleDataError):
            db.session.rollback()  # a concurrent writer (SQLite's lock, a poke): the next tick retries
            log.info("workflow instance %s: changed while ticking; retrying next tick", instance_id)
        except Exception:  # noqa: BLE001 - one broken instance must not stop the others
            db.session.rollback()
            log.exception("workflow instance %s: tick failed; retrying later", instance_id)
            db.session.execute(update(WorkflowInstance).where(WorkflowInstance.id == instance_id)
                               .values(next_timer_at=now + TICK_RETRY))
            db.session.commit()
    return ran


def _tick(instance_id: int, now: datetime) -> bool:
    query = select(WorkflowInstance).where(WorkflowInstance.id == instance_id)
    if db.engine.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    instance = db.session.scalar(query.execution_options(populate_existing=True))
    if instance is None or instance.completed or instance.next_timer_at is None or instance.next_timer_at > now:
        return False  # another worker has it, or got there first
    workflow = runtime.load_workflow(instance.version.spec_json, instance.state)
    message, instance.pending_message = instance.pending_message, None
    with service_tasks.running(instance.id, None):
        if message:
            runtime.deliver_message(workflow, message)
        runtime.advance(workflow)
    _store(instance, workflow)
    instance_advanced.send(instance, completed=None)
    return True


def _task_row(instance: WorkflowInstance, uuid: str) -> WorkflowTask | None:
    for row in instance.tasks:
        if row.task_uuid == uuid and row.state == "ready":
            return row
    return None


def _store(instance: WorkflowInstance, workflow) -> None:
    """Write state and task rows; the version column makes a concurrent writer fail."""
    instance.state = runtime.dump_workflow(workflow)
    instance.completed = runtime.is_completed(workflow)
    instance.next_timer_at = runtime.next_timer_due(workflow)
    ready = {t.uuid: t for t in runtime.ready_user_tasks(workflow)}
    for row in instance.tasks:
        if row.state == "ready" and row.task_uuid not in ready:
            row.state = "cancelled"
    known = {row.task_uuid for row in instance.tasks if row.state == "ready"}
    for uuid, task in ready.items():
        if uuid not in known:
            instance.tasks.append(WorkflowTask(
                task_uuid=uuid, spec_name=task.name, title=task.title,
                form_key=task.form_key, lane=task.lane, state="ready",
            ))
    instance.updated_at = utcnow()
    db.session.flush()


__all__ = [
    "PathwayInvalid", "StaleInstance", "TaskNotReady", "CannotGoBack", "StepOutcome",
    "publish_files", "publish_directory", "published_pathways", "current_version", "rollback",
    "pathway_rules", "PathwayRules", "check_files", "published_process_files", "get_pathway", "main_file_of",
    "CheckResult", "SpecProblem", "serialize_specs",
    "start_instance", "run_new_instance", "lock_instance", "ready_tasks", "complete_task", "go_back",
    "step_view", "StepView", "instance_advanced", "cancel_instance", "instance_data", "poke_instance",
    "fire_due_timers", "due_instances",
]
