"""Home, language switch and health check."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy import text

from app.auth import services as auth_services
from app.auth.models import Role
from app.auth.permissions import public
from app.auth.routes import _safe_next
from app.extensions import db

bp = Blueprint("core", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/core")


@bp.route("/")
@public
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.role == Role.caseworker:
        return redirect(url_for("referrals.index"))
    if current_user.role == Role.admin:
        return redirect(url_for("admin.users"))
    if current_user.role == Role.provider:
        return redirect(url_for("inbox.index"))
    return redirect(url_for("core.home"))


@bp.route("/home")
@public
def home():
    from flask import render_template

    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return render_template("core/home.html")


@bp.route("/language", methods=["POST"])
@public
def set_language():
    """Switch the UI language; saved on the account when logged in."""
    locale = request.form.get("locale", "")
    if locale in current_app.config["SUPPORTED_LOCALES"]:
        session["locale"] = locale
        if current_user.is_authenticated:
            auth_services.set_user_locale(current_user, locale)
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/health")
@public
def health():
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}
