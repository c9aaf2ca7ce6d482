"""Caseworker pages: my referrals, start a referral, the guided step, the referral page."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.audit.services import referral_history
from app.auth.models import Role
from app.auth.permissions import roles_required
from app.core.errors import render_error
from app.extensions import db
from app.formkit import build_form, get_definition
from app.inbox.services import DECLINE_REASONS, OUTCOMES
from app.referrals import follow_up, services
from app.referrals.forms import follow_up_form
from app.referrals.models import ReferralStatus
from app.workflow import services as workflow

bp = Blueprint("referrals", __name__, url_prefix="/referrals", template_folder="templates")
caseworker_only = roles_required(Role.caseworker)


@bp.route("/")
@caseworker_only
def index():
    status = ReferralStatus.__members__.get(request.args.get("status", ""))
    page = services.list_referrals(current_user, status=status,
                                   page=request.args.get("page", 1, type=int))
    return render_template("referrals/index.html", page=page, status=status,
                           statuses=list(ReferralStatus))


@bp.route("/new", methods=["GET", "POST"])
@caseworker_only
def new():
    if request.method == "POST":
        referral = services.start_referral(current_user, request.form.get("pathway", ""))
        db.session.commit()
        return redirect(url_for(".step", referral_id=referral.id))
    return render_template("referrals/new.html", pathways=workflow.published_pathways())


@bp.route("/<int:referral_id>")
@caseworker_only
def detail(referral_id: int):
    referral = services.get_referral(current_user, referral_id)
    return _render_detail(referral)


def _render_detail(referral, forms: dict | None = None, status: int = 200):
    answers = services.submissions(referral)
    step = services.current_step(current_user, referral)
    g.pop("pathways_step_data", None)  # answers below are shown as given, not against the current step
    forms = forms or {}
    waiting = [t for t in referral.targets if follow_up.needs_follow_up(t) and t.id not in forms]
    if waiting:  # load the workflow once for every target's choices
        data = workflow.instance_data(referral.instance)
        forms.update({t.id: follow_up_form(referral, t, data=data) for t in waiting})
    services.record_view(current_user, referral, "detail")
    db.session.commit()
    return render_template("referrals/detail.html", referral=referral, answers=answers,
                           definitions={a.form_key: get_definition(a.form_key) for a in answers},
                           history=referral_history(referral), step=step, follow_up_forms=forms,
                           decline_reasons=DECLINE_REASONS, target_outcomes=OUTCOMES), status


@bp.route("/<int:referral_id>/targets/<int:target_id>/follow-up", methods=["POST"])
@caseworker_only
def target_follow_up(referral_id: int, target_id: int):
    referral = services.get_referral(current_user, referral_id, for_edit=True)
    target = next((t for t in referral.targets if t.id == target_id), None)
    if target is None:
        abort(404)
    if not follow_up.needs_follow_up(target):
        return render_error(409, _("This service's answer was already followed up. Nothing changed."))
    form = follow_up_form(referral, target, formdata=request.form)
    if not form.validate_on_submit():
        return _render_detail(referral, {target.id: form}, 422)
    action, _sep, service_id = form.choice.data.partition(":")
    try:
        new = follow_up.follow_up_target(current_user, referral, target, action,
                                         int(service_id) if service_id.isdigit() else None)
    except follow_up.FollowUpConflict:
        db.session.rollback()
        return render_error(409, _("That choice is no longer possible (the service or the referral changed). "
                                   "Nothing was sent; please look again."))
    db.session.commit()
    if new is not None:
        flash(_("Sent to %(service)s (code %(code)s).", service=new.service.name, code=new.code), "info")
    elif action == "resend":
        flash(_("Sent again to %(service)s with a new deadline.", service=target.service.name), "info")
    else:
        flash(_("Closed: no other service will be asked for this need."), "info")
    return redirect(url_for(".detail", referral_id=referral.id))


@bp.route("/<int:referral_id>/step", methods=["GET", "POST"])
@caseworker_only
def step(referral_id: int):
    referral = services.get_referral(current_user, referral_id, for_edit=True)
    current = services.current_step(current_user, referral)
    if current is None:
        flash(_("There is no step waiting for you on this referral."), "info")
        return redirect(url_for(".detail", referral_id=referral.id))
    definition = get_definition(current.task.form_key)
    if definition is None:  # publication checks form keys; only a form deleted since lands here
        current_app.logger.error("form %r of step %s has no definition", current.task.form_key,
                                 current.task.spec_name)
        return render_error(503, _("This step cannot be shown because its form is missing. "
                                   "Your answers so far are safe; please tell your coordinator."))
    if request.method == "GET":
        bound = build_form(definition, data=current.prefill)
        if current.prefill:
            services.record_view(current_user, referral, "step")
            db.session.commit()
        return _render_step(referral, current, bound)

    task_uuid = request.form.get("task", "")
    revision = request.form.get("revision", type=int) or 0
    action = request.form.get("action", "next")
    if task_uuid != current.task.task_uuid or revision != referral.instance.revision:
        return _conflict()  # a stale page: its answers belong to a step that moved on
    bound = build_form(definition, formdata=request.form)
    try:
        if action == "draft":
            services.save_draft(current_user, referral, task_uuid, revision, bound.raw_data())
            db.session.commit()
            flash(_("Draft saved. You can come back to this step later."), "info")
            return redirect(url_for(".detail", referral_id=referral.id))
        if action == "back":
            services.go_back(current_user, referral, task_uuid, revision)
            db.session.commit()
            return redirect(url_for(".step", referral_id=referral.id))
        if not bound.validate():
            if bound.newly_shown:
                flash(_("More questions appeared based on your answers. Please complete them."), "info")
            return _render_step(referral, current, bound, status=422 if not bound.newly_shown else 200)
        services.submit_step(current_user, referral, task_uuid, revision,
                             answers=bound.answers(), workflow_data=bound.workflow_data())
        db.session.commit()
    except services.StepInvalid as invalid:
        db.session.rollback()
        for name, message in invalid.errors.items():
            field = getattr(bound.form, name, None)
            if field is not None:
                field.errors = [*field.errors, message]
        return _render_step(referral, current, bound, status=422)
    except services.StepConflict:
        db.session.rollback()
        return _conflict()
    if services.current_step(current_user, referral) is not None:
        return redirect(url_for(".step", referral_id=referral.id))
    if referral.status == ReferralStatus.completed:
        flash(_("The referral is complete."), "info")
    else:
        flash(_("Step saved. The referral now waits for others."), "info")
    return redirect(url_for(".detail", referral_id=referral.id))


def _conflict():
    return render_error(409, _("This step was already submitted or the referral changed "
                               "meanwhile. Nothing was saved twice; please check where it stands now."))


def _render_step(referral, current, bound, status: int = 200):
    return render_template("referrals/step.html", referral=referral, current=current,
                           bound=bound), status


@bp.route("/<int:referral_id>/cancel", methods=["POST"])
@caseworker_only
def cancel(referral_id: int):
    referral = services.get_referral(current_user, referral_id, for_edit=True)
    services.cancel_referral(current_user, referral)
    db.session.commit()
    flash(_("The referral was cancelled."), "info")
    return redirect(url_for(".detail", referral_id=referral.id))
