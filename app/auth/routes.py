"""Login and logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app.audit.services import record_event
from app.auth import services
from app.auth.forms import LoginForm
from app.auth.permissions import login_required, public
from app.extensions import db, login_manager

bp = Blueprint("auth", __name__, template_folder="templates")


@login_manager.user_loader
def _load_user(session_id: str):
    return services.load_session_user(session_id)


login_manager.login_view = "auth.login"
login_manager.login_message = None


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("core.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            result = services.authenticate(form.email.data, form.password.data, request.remote_addr)
        except services.LoginThrottled:
            db.session.commit()
            form.password.errors.append(
                _("Too many failed attempts. Please wait a few minutes and try again.")
            )
            return render_template("auth/login.html", form=form), 429
        if result.user is not None:
            locale = session.get("locale")
            session.clear()  # nothing from before the login survives it
            if locale:
                session["locale"] = locale
            login_user(result.user)
            record_event("auth.login", user=result.user)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        db.session.commit()
        form.password.errors.append(_("The email address or password is not correct."))
        status = 401
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    services.end_session(current_user.login_session_id)
    record_event("auth.logout", user=current_user)
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))
