"""Error pages: a clear message, the right status, never a stack trace."""

from __future__ import annotations

from flask import Flask, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from app.extensions import db


def _messages() -> dict[int, str]:
    return {
        400: _("The request could not be understood."),
        403: _("You do not have access to this page."),
        404: _("This page does not exist, or you do not have access to it."),
        405: _("This action is not allowed here."),
        409: _("Someone else changed this at the same time. Please review and try again."),
        429: _("Too many requests. Please wait a moment and try again."),
        500: _("Something went wrong on our side. Nothing you entered has been lost."),
        503: _("The service is temporarily unavailable. Please try again in a moment."),
    }


def render_error(status: int, message: str | None = None):
    text = message or _messages().get(status, _messages()[500])
    return render_template("core/error.html", status=status, message=text), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(_error):
        return render_error(400, _("Your form expired or was sent from elsewhere. "
                                   "Please go back, reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if error.code and error.code < 400:
            return error
        return render_error(error.code or 500)

    @app.errorhandler(OperationalError)
    def _database_down(_error):
        db.session.rollback()
        app.logger.error("database unavailable")
        return render_error(503)
