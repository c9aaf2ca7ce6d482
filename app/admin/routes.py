"""Admin pages: organisations and users."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.admin import services
from app.admin.forms import OrganisationForm, UserForm
from app.auth.models import Organisation, Role, User
from app.auth.permissions import roles_required
from app.extensions import db

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")
admin_only = roles_required(Role.admin)


@bp.route("/organisations", methods=["GET", "POST"])
@admin_only
def organisations():
    form = OrganisationForm()
    if form.validate_on_submit():
        try:
            services.add_organisation(current_user, form.name.data, form.acronym.data or "", form.locale.data)
            db.session.commit()
        except services.DuplicateName:
            db.session.rollback()
            form.name.errors.append(_("An organisation with this name exists already."))
        else:
            flash(_("Organisation added."), "info")
            return redirect(url_for(".organisations"))
    orgs = db.session.scalars(select(Organisation).order_by(Organisation.name)).all()
    return render_template("admin/organisations.html", form=form, organisations=orgs)


@bp.route("/users")
@admin_only
def users():
    rows = db.session.scalars(select(User).order_by(User.email)).all()
    return render_template("admin/users.html", users=rows)


@bp.route("/users/new", methods=["GET", "POST"])
@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_only
def edit_user(user_id: int | None = None):
    user = db.session.get(User, user_id) if user_id else None
    if user_id and user is None:
        abort(404)
    orgs = db.session.scalars(select(Organisation).order_by(Organisation.name)).all()
    form = UserForm(obj=user, organisations=orgs, require_password=user is None)
    if user is not None and not form.is_submitted():
        form.role.data = user.role.value
    if user is not None:
        form.email.render_kw = {"readonly": True}
    if form.validate_on_submit():
        try:
            services.save_user(current_user, user, form)
            db.session.commit()
        except services.DuplicateName:
            db.session.rollback()
            form.email.errors.append(_("A user with this email address exists already."))
        else:
            flash(_("User saved."), "info")
            return redirect(url_for(".users"))
    return render_template("admin/user_form.html", form=form, user=user)
