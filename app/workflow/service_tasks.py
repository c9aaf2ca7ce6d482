"""Service tasks: BPMN steps that call into the app (send a referral, record gaps ...).

The workflow package never imports the domains that do the work. They register handlers
here by operator name at start-up; a BPMN service task names its operator with
``spiffworkflow:serviceTaskOperator``. While the engine runs, services put the instance
being run (and the user running it) into a context variable, so a handler knows which
referral it acts for. Handlers flush, never commit: they are part of the step's transaction.

A handler may come with a *preview*: what the studio's test run calls instead, in a sandbox
with no referral behind it. A preview reads (the directory, the task data) and never writes;
an operation without one returns nothing in the sandbox. Every sandboxed call is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceCall:
    """What a handler gets: the instance and user it runs for, its parameters, the task data."""

    instance_id: int
    user_id: int | None
    operation: str
    params: dict[str, Any]
    data: dict[str, Any]


Handler = Callable[[ServiceCall], Any]


@dataclass
class SandboxCall:
    """A service task the test run reached: what it was asked and what its preview said."""

    operation: str
    params: dict[str, Any]
    result: Any


_handlers: dict[str, Handler] = {}
_previews: dict[str, Handler] = {}
_current: ContextVar[tuple[int, int | None] | None] = ContextVar("pathways_engine_run", default=None)
_sandbox: ContextVar[list[SandboxCall] | None] = ContextVar("pathways_sandbox", default=None)


class UnknownOperation(LookupError):
    """A service task names an operator nobody registered."""


def register(name: str, handler: Handler, preview: Handler | None = None) -> None:
    """Register ``handler`` (and its sandbox ``preview``) for service tasks whose operator id
    is ``name``."""
    _handlers[name] = handler
    if preview is not None:
        _previews[name] = preview
    else:
        _previews.pop(name, None)


def operations() -> set[str]:
    """The operator names a pathway may use (checked at publication)."""
    return set(_handlers)


@contextmanager
def running(instance_id: int, user_id: int | None) -> Iterator[None]:
    """Mark the instance (and user) the engine is running for, for the handlers it calls."""
    token = _current.set((instance_id, user_id))
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def sandboxed() -> Iterator[list[SandboxCall]]:
    """Run service tasks as previews (nothing written, nothing sent); yields the calls made."""
    calls: list[SandboxCall] = []
    token = _sandbox.set(calls)
    try:
        yield calls
    finally:
        _sandbox.reset(token)


def call(operation: str, params: dict[str, dict], data: dict) -> str:
    """Run a handler for the engine; returns JSON, as SpiffWorkflow's service tasks expect."""
    handler = _handlers.get(operation)
    if handler is None:
        raise UnknownOperation(operation)
    values = {name: spec.get("value") for name, spec in params.items()}
    sandbox = _sandbox.get()
    if sandbox is not None:
        preview = _previews.get(operation)
        result = preview(ServiceCall(0, None, operation, values, dict(data))) if preview else None
        sandbox.append(SandboxCall(operation, values, result))
        return json.dumps(result)
    current = _current.get()
    if current is None:
        raise RuntimeError(f"service task '{operation}' ran outside an engine run")
    result = handler(ServiceCall(current[0], current[1], operation, values, dict(data)))
    return json.dumps(result)
