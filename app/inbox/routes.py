"""Provider pages: the inbox of referrals sent to the organisation, one referral, answers."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.models import Role
from app.auth.permissions import roles_required
from app.core.errors import render_error
from app.extensions import db
from app.formkit import get_definition
from app.inbox import services
from app.inbox.forms import AcceptForm, DeclineForm, OutcomeForm
from app.referrals.models import TargetStatus

bp = Blueprint("inbox", __name__, url_prefix="/inbox", template_folder="templates")
providers = roles_required(Role.provider)


@bp.route("/")
@providers
def index():
    status = TargetStatus.__members__.get(request.args.get("status", ""))
    page = services.inbox(current_user, status=status, page=request.args.get("page", 1, type=int))
    return render_template("inbox/index.html", page=page, status=status,
                           statuses=[s for s in TargetStatus if s != TargetStatus.blocked])


@bp.route("/<int:target_id>")
@providers
def target(target_id: int):
    item = services.get_target(current_user, target_id)
    details = services.shared_details(current_user, item)
    db.session.commit()  # the audit event of the view
    return render_template("inbox/target.html", target=item, details=details, get_definition=get_definition,
                           accept_form=AcceptForm(), decline_form=DeclineForm(), outcome_form=OutcomeForm(),
                           reasons=services.DECLINE_REASONS, outcomes=services.OUTCOMES)


@bp.route("/<int:target_id>/accept", methods=["POST"])
@providers
def accept(target_id: int):
    item = services.get_target(current_user, target_id)
    if not AcceptForm().validate_on_submit():
        return render_error(400)
    return _answered(item, lambda: services.accept_target(current_user, item), _("You accepted the referral."))


@bp.route("/<int:target_id>/decline", methods=["POST"])
@providers
def decline(target_id: int):
    item = services.get_target(current_user, target_id)
    form = DeclineForm()
    if not form.validate_on_submit():
        return render_template("inbox/target.html", target=item, details=[], get_definition=get_definition,
                               accept_form=AcceptForm(), decline_form=form, outcome_form=OutcomeForm(),
                               reasons=services.DECLINE_REASONS, outcomes=services.OUTCOMES), 422
    return _answered(item, lambda: services.decline_target(current_user, item, form.reason.data, form.note.data),
                     _("You declined the referral. The caseworker will be told."))


@bp.route("/<int:target_id>/outcome", methods=["POST"])
@providers
def outcome(target_id: int):
    item = services.get_target(current_user, target_id)
    form = OutcomeForm()
    if not form.validate_on_submit():
        flash(_("Choose what happened."), "error")
        return redirect(url_for(".target", target_id=item.id))
    return _answered(item, lambda: services.record_outcome(current_user, item, form.outcome.data, form.note.data),
                     _("Outcome recorded. Thank you."))


def _answered(item, action, message: str):
    try:
        action()
        db.session.commit()
    except services.AlreadyAnswered:
        db.session.rollback()
        return render_error(409, _("This referral was already answered (on the web or by SMS). "
                                   "Nothing was changed."))
    flash(message, "info")
    return redirect(url_for(".target", target_id=item.id))
