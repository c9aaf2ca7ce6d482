"""Every user's notifications, and their choice to get them by SMS too."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.permissions import roles_required
from app.extensions import db
from app.notifications import services
from app.notifications.forms import SmsSettingsForm

bp = Blueprint("notifications", __name__, url_prefix="/notifications", template_folder="templates")
signed_in = roles_required()


@bp.route("/")
@signed_in
def index():
    page = services.for_user(current_user, page=request.args.get("page", 1, type=int))
    form = SmsSettingsForm(obj=current_user)
    return render_template("notifications/index.html", page=page, form=form, text=services.text,
                           link=services.link)


@bp.route("/read", methods=["POST"])
@signed_in
def mark_read():
    services.mark_all_read(current_user)
    db.session.commit()
    return redirect(url_for(".index"))


@bp.route("/settings", methods=["POST"])
@signed_in
def settings():
    form = SmsSettingsForm()
    if not form.validate_on_submit():
        page = services.for_user(current_user, page=1)
        return render_template("notifications/index.html", page=page, form=form, text=services.text,
                               link=services.link), 422
    current_user.notify_by_sms = form.notify_by_sms.data
    current_user.phone = form.phone.data or None
    db.session.commit()
    flash(_("Saved."), "info")
    return redirect(url_for(".index"))
