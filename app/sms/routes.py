"""Development only: the console backend's outbox, one inbox per phone (``/dev/sms``)."""

from __future__ import annotations

from itertools import groupby

from flask import Blueprint, abort, current_app, render_template
from sqlalchemy import select

from app.auth.models import Role
from app.auth.permissions import roles_required
from app.extensions import db
from app.sms.models import OutboxMessage

bp = Blueprint("sms_dev", __name__, url_prefix="/dev/sms", template_folder="templates")


def dev_page_enabled() -> bool:
    return (current_app.config.get("SMS_BACKEND") == "console"
            and current_app.config.get("PATHWAYS_ENV") != "production")


@bp.before_request
def _only_console_in_development():
    if not dev_page_enabled():
        abort(404)


@bp.route("/")
@roles_required(Role.admin)
def index():
    messages = db.session.scalars(select(OutboxMessage).order_by(
        OutboxMessage.recipient, OutboxMessage.created_at.desc(), OutboxMessage.id.desc())).all()
    phones = [(phone, list(group)) for phone, group in groupby(messages, key=lambda m: m.recipient)]
    phones.sort(key=lambda p: p[1][0].created_at, reverse=True)  # the phone with the newest message first
    return render_template("sms/dev_index.html", phones=phones)
