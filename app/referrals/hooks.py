"""Extension points a pathway step can use without an ``if`` in a view.

- *submission hooks*, by form key: run after a step's answers are stored (e.g. the
  ``consent`` form writes the structured consent record);
- *step validators*, by form key: server-side rules that need the referral (e.g. the
  chosen services must be covered by the consent);
- *panels*, by the user task's ``panel`` property: extra context shown above a form
  (e.g. matching services, their reasons and the gaps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SubmissionHook = Callable[[Any, Any, dict], None]  # (user, referral, answers)
StepValidator = Callable[[Any, dict], dict[str, str]]  # (referral, answers) -> {field: error}
PanelProvider = Callable[[Any, dict], dict]  # (referral, task data) -> template context

submission_hooks: dict[str, SubmissionHook] = {}
step_validators: dict[str, StepValidator] = {}
panels: dict[str, PanelProvider] = {}


def on_submission(form_key: str):
    """Decorator: run the function after a step with this form is stored."""

    def register(fn: SubmissionHook) -> SubmissionHook:
        submission_hooks[form_key] = fn
        return fn

    return register


def validator(form_key: str):
    """Decorator: a server-side rule for steps with this form."""

    def register(fn: StepValidator) -> StepValidator:
        step_validators[form_key] = fn
        return fn

    return register


def panel(name: str):
    """Decorator: provide the context of the step panel ``name`` (template referrals/panels/<name>.html)."""

    def register(fn: PanelProvider) -> PanelProvider:
        panels[name] = fn
        return fn

    return register
