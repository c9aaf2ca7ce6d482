"""Starting referrals, moving them through their pathway, and finding them again.

Services check permissions themselves (a route forgetting to is not a leak), flush, and
never commit: the request commits once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from flask import g
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import Forbidden, NotFound

from app.audit.services import record_event
from app.auth.permissions import can_do_task, can_edit_referral, can_start_referral, can_view_referral
from app.core.db import utcnow
from app.extensions import db
from app.referrals import hooks
from app.referrals.follow_up import needs_follow_up
from app.referrals.models import FormSubmission, Referral, ReferralStatus, StepDraft, TargetStatus
from app.workflow import services as workflow
from app.workflow.models import WorkflowInstance, WorkflowTask

#: Crockford-style alphabet: no I, L, O, U — easy to read out over a phone.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class StepConflict(Exception):
    """The step was already submitted (another tab, a double click, a colleague)."""


class StepInvalid(Exception):
    """A server-side rule of the step refused the answers: ``errors`` is {field: message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


@dataclass
class CurrentStep:
    task: WorkflowTask
    prefill: dict
    from_draft: bool
    can_go_back: bool
    #: What the pathway knows at this step (non-personal answers, decisions so far).
    data: dict = field(default_factory=dict)
    instructions: str | None = None
    panel: str | None = None
    panel_context: dict = field(default_factory=dict)


def _new_reference() -> str:
    while True:
        code = "R-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(6))
        if db.session.scalar(select(Referral.id).where(Referral.reference == code)) is None:
            return code


def start_referral(user, pathway_key: str, parent: Referral | None = None) -> Referral:
    """Start a referral on the current version of a published pathway.

    ``parent`` links a cross-referral (e.g. the CP referral a GBV pathway started).
    """
    if not can_start_referral(user):
        raise Forbidden()
    pathway = workflow.get_pathway(pathway_key)
    version = workflow.current_version(pathway) if pathway else None
    if version is None:
        raise NotFound()
    instance = WorkflowInstance(version=version, state="{}")
    referral = Referral(reference=_new_reference(), organisation_id=user.organisation_id,
                        created_by_id=user.id, version=version, instance=instance, parent=parent)
    db.session.add(referral)
    db.session.flush()
    workflow.run_new_instance(instance, user)
    refresh_status(referral)
    record_event("referral.started", user=user, referral=referral,
                 detail={"pathway": pathway.key, "version": version.number})
    return referral


def get_referral(user, referral_id: int, *, for_edit: bool = False) -> Referral:
    """Load a referral the user may see (or edit); 404 otherwise, so ids reveal nothing."""
    referral = db.session.get(Referral, referral_id)
    allowed = can_edit_referral if for_edit else can_view_referral
    if referral is None or not allowed(user, referral):
        raise NotFound()
    return referral


def record_view(user, referral: Referral, what: str) -> None:
    """Audit a view of the referral's personal data."""
    record_event("referral.viewed", user=user, referral=referral, detail={"page": what})


def current_step(user, referral: Referral) -> CurrentStep | None:
    """The step waiting for this user, pre-filled from a draft or earlier answers."""
    for _attempt in range(2):
        task = next((t for t in workflow.ready_tasks(referral.instance) if can_do_task(user, t.lane)), None)
        if task is None:
            return None
        try:
            view = workflow.step_view(referral.instance, task.task_uuid)
            break
        except workflow.TaskNotReady:
            # A colleague's submission committed between reading the task rows and the
            # state: read both again, together.
            db.session.expire(referral.instance)
    else:
        return None
    draft = db.session.scalar(
        select(StepDraft).where(StepDraft.referral_id == referral.id, StepDraft.step == task.spec_name)
    )
    if draft is not None:
        prefill, from_draft = draft.answers, True
    else:
        earlier = _latest_submission(referral, task.spec_name)
        prefill, from_draft = (earlier.answers if earlier else {}), False
    g.pathways_step_data = view.data  # read by choice sources such as the matching services
    provider = hooks.panels.get(view.task.panel or "")
    return CurrentStep(task, prefill, from_draft, view.can_go_back, view.data, view.task.instructions,
                       view.task.panel if provider else None,
                       provider(referral, view.data) if provider else {})


def _latest_submission(referral: Referral, step: str) -> FormSubmission | None:
    return db.session.scalar(
        select(FormSubmission)
        .where(FormSubmission.referral_id == referral.id, FormSubmission.step == step)
        .order_by(FormSubmission.id.desc()).limit(1)
    )


def _ready_task_for(user, referral: Referral, task_uuid: str, revision: int) -> WorkflowTask:
    if not can_edit_referral(user, referral):
        raise NotFound()
    instance = workflow.lock_instance(referral.instance_id)
    if instance.revision != revision:
        raise StepConflict()
    task = next((t for t in workflow.ready_tasks(instance) if t.task_uuid == task_uuid), None)
    if task is None:
        raise StepConflict()
    if not can_do_task(user, task.lane):
        raise Forbidden()
    return task


def submit_step(user, referral: Referral, task_uuid: str, revision: int, *,
                answers: dict, workflow_data: dict) -> workflow.StepOutcome:
    """Record a step's validated answers and move the pathway on — all in one transaction.

    ``answers`` (everything, personal data included) are stored in our own table;
    only ``workflow_data`` (non-personal or exposed answers) and a reference to the
    submission enter the workflow state. Raises :class:`StepConflict` when the step is no
    longer waiting or the referral changed since the form was shown.
    """
    task = _ready_task_for(user, referral, task_uuid, revision)
    validate = hooks.step_validators.get(task.form_key or "")
    errors = validate(referral, answers) if validate else {}
    if errors:
        raise StepInvalid(errors)
    for earlier in db.session.scalars(select(FormSubmission).where(
            FormSubmission.referral_id == referral.id, FormSubmission.step == task.spec_name)):
        earlier.superseded = True
    submission = FormSubmission(referral_id=referral.id, step=task.spec_name, task_uuid=task_uuid,
                                form_key=task.form_key or "", answers=answers, submitted_by_id=user.id)
    db.session.add(submission)
    db.session.flush()
    after = hooks.submission_hooks.get(task.form_key or "")
    if after:
        after(user, referral, answers)
    try:
        outcome = workflow.complete_task(referral.instance, task_uuid, workflow_data, user,
                                         reference=(task.spec_name, submission.id))
    except (workflow.TaskNotReady, workflow.StaleInstance, StaleDataError) as exc:
        raise StepConflict() from exc
    _discard_draft(referral, task.spec_name)
    refresh_status(referral)
    record_event("step.completed", user=user, referral=referral, step=task.spec_name,
                 detail={"title": task.title, "form": task.form_key, "fields": sorted(answers)})
    if referral.status == ReferralStatus.completed:
        record_event("referral.completed", user=user, referral=referral)
    return outcome


def save_draft(user, referral: Referral, task_uuid: str, revision: int, raw: dict) -> None:
    """Keep unvalidated answers for later; the step stays where it is."""
    task = _ready_task_for(user, referral, task_uuid, revision)
    draft = db.session.scalar(select(StepDraft).where(
        StepDraft.referral_id == referral.id, StepDraft.step == task.spec_name))
    if draft is None:
        draft = StepDraft(referral_id=referral.id, step=task.spec_name, answers=raw, saved_by_id=user.id)
        db.session.add(draft)
    else:
        draft.answers, draft.saved_by_id, draft.saved_at = raw, user.id, utcnow()
    referral.updated_at = utcnow()
    record_event("step.draft_saved", user=user, referral=referral, step=task.spec_name)
    db.session.flush()


def go_back(user, referral: Referral, task_uuid: str, revision: int) -> None:
    """Return to the previous step, where the pathway allows it; its answers are kept as prefill."""
    task = _ready_task_for(user, referral, task_uuid, revision)
    try:
        previous = workflow.go_back(referral.instance, task_uuid)
    except workflow.CannotGoBack as exc:
        raise Forbidden() from exc
    except (workflow.TaskNotReady, StaleDataError) as exc:
        raise StepConflict() from exc
    refresh_status(referral)
    record_event("step.went_back", user=user, referral=referral, step=previous.name,
                 detail={"from": task.spec_name})


def cancel_referral(user, referral: Referral) -> None:
    """Stop a referral that is not finished; nothing more happens on it."""
    if not can_edit_referral(user, referral) or referral.status in (
            ReferralStatus.completed, ReferralStatus.cancelled):
        raise Forbidden()
    workflow.cancel_instance(workflow.lock_instance(referral.instance_id))
    for target in referral.targets:
        if target.status == TargetStatus.pending:
            target.status, target.updated_at = TargetStatus.cancelled, utcnow()
    referral.status, referral.closed_at, referral.current_step = ReferralStatus.cancelled, utcnow(), None
    referral.updated_at = utcnow()
    record_event("referral.cancelled", user=user, referral=referral)
    db.session.flush()


def _discard_draft(referral: Referral, step: str) -> None:
    draft = db.session.scalar(select(StepDraft).where(
        StepDraft.referral_id == referral.id, StepDraft.step == step))
    if draft is not None:
        db.session.delete(draft)


def refresh_status(referral: Referral) -> None:
    """Derive the referral's status from its workflow and its targets."""
    instance = referral.instance
    ready = workflow.ready_tasks(instance)
    if instance.completed:
        pending = any(t.status == TargetStatus.pending for t in referral.targets)
        referral.status = ReferralStatus.waiting if pending else ReferralStatus.completed
        referral.current_step = None
        referral.closed_at = None if pending else utcnow()
    else:
        mine = [t for t in ready if (t.lane or "caseworker") == "caseworker"]
        referral.status = ReferralStatus.in_progress if mine else (
            ReferralStatus.follow_up if any(needs_follow_up(t) for t in referral.targets) else ReferralStatus.waiting)
        referral.current_step = (mine or ready)[0].title if ready else None
    referral.updated_at = utcnow()
    db.session.flush()


def list_referrals(user, *, status: ReferralStatus | None = None, page: int = 1, per_page: int = 20):
    """The user's organisation's referrals, newest activity first (a Flask-SQLAlchemy page)."""
    return db.paginate(referral_list_query(user.organisation_id, status), page=page, per_page=per_page,
                       error_out=False)


def referral_list_query(organisation_id: int, status: ReferralStatus | None = None):
    """The query behind :func:`list_referrals`; an index serves its order (no sort)."""
    query = select(Referral).where(Referral.organisation_id == organisation_id)
    if status is not None:
        query = query.where(Referral.status == status)
    return query.order_by(Referral.updated_at.desc(), Referral.id.desc())


def submissions(referral: Referral) -> list[FormSubmission]:
    """The answers in force (not superseded), in the order they were given."""
    return list(db.session.scalars(select(FormSubmission).where(
        FormSubmission.referral_id == referral.id, FormSubmission.superseded.is_(False)
    ).order_by(FormSubmission.id)))
