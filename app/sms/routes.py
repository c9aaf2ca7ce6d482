"""Twilio's webhooks (``POST /sms/inbound``, ``POST /sms/status``) and, in development only, the
console backend's outbox, one inbox per phone (``/dev/sms``), where one can reply as a phone."""

from __future__ import annotations

import logging
import secrets
from itertools import groupby

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.auth.models import Role
from app.auth.permissions import public, roles_required
from app.extensions import csrf, db
from app.sms.inbound import BadInbound, apply_status_callback, handle_inbound, normalise_phone
from app.sms.models import OutboxMessage

log = logging.getLogger(__name__)

bp = Blueprint("sms_dev", __name__, url_prefix="/dev/sms", template_folder="templates")
webhooks = Blueprint("sms_webhooks", __name__, url_prefix="/sms")
# Registered with the dev blueprint (app/__init__.py registers only ``bp``).

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
#: Twilio's webhook bodies are small; anything bigger is not Twilio.
MAX_WEBHOOK_BYTES = 64 * 1024


def _twiml() -> Response:
    return Response(EMPTY_TWIML, status=200, content_type="text/xml; charset=utf-8")


def _signed_by_twilio() -> bool:
    """``X-Twilio-Signature`` over ``PUBLIC_BASE_URL`` + path (+ query) and the POST parameters,
    with TWILIO_AUTH_TOKEN. No token configured: nothing is signed, so nothing passes."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature")
    if not token or not signature:
        return False
    url = current_app.config["PUBLIC_BASE_URL"] + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    try:
        return bool(RequestValidator(token).validate(url, request.form, signature))
    except Exception:  # noqa: BLE001 - whatever the request holds, a bad one is a 403
        return False


@webhooks.before_request
def _check_webhook():
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        abort(413)
    if not _signed_by_twilio():
        log.warning("sms webhook %s: missing or invalid signature", request.path)
        abort(403)


@webhooks.route("/inbound", methods=["POST"])
@public
def inbound():
    """A text message to our number (Twilio's messaging webhook). Replies go through the outbox,
    so the answer is always empty TwiML."""
    try:
        handle_inbound(request.form)
    except BadInbound:
        abort(400)
    return _twiml()


@webhooks.route("/status", methods=["POST"])
@public
def status():
    """Twilio's status callback for an outbox message (``?outbox=<id>``)."""
    outbox_id = request.args.get("outbox", "")
    if not outbox_id.isascii() or not outbox_id.isdigit() or len(outbox_id) > 18:
        abort(400)
    apply_status_callback(int(outbox_id), request.form)
    return Response(status=204)


csrf.exempt(inbound)
csrf.exempt(status)


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


@bp.route("/reply", methods=["POST"])
@roles_required(Role.admin)
def reply():
    """Reply as a phone: the webhook's own handler, without the signature step."""
    phone = normalise_phone(request.form.get("phone"))
    if phone is None:
        abort(400)
    try:
        outcome = handle_inbound({"MessageSid": "DEV" + secrets.token_hex(16), "From": phone,
                                  "To": current_app.config.get("TWILIO_FROM_NUMBER") or "",
                                  "Body": request.form.get("body", "")[:1600]})
    except BadInbound:
        abort(400)
    flash(_("Reply received: %(result)s.", result=outcome.result.value))
    return redirect(url_for(".index"))
