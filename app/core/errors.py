"""Error pages: a clear message, the right status, never a stack trace."""

from __future__ import annotations

from flask import Flask, current_app, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from app.extensions import db, login_manager


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
    try:
        return _render(status, message)
    except (OperationalError, InterfaceError) as exc:  # the page (its user, their language) needed the database
        return database_unavailable(exc)


def _render(status: int, message: str | None):
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

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        cause = unavailable_database_error(error)
        if cause is None:
            raise error  # a bug: Flask logs it and answers with the 500 page above
        return database_unavailable(cause)


def unavailable_database_error(error: BaseException) -> BaseException | None:
    """The database error behind ``error`` when the database could not be reached (or the
    connection broke), looking through the exceptions that wrapped it — the workflow engine
    reports a service task's failure as its own exception. None for any other error."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OperationalError | InterfaceError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def database_unavailable(error: BaseException):
    """The database cannot be reached (restarting, down, a connection cut): 503 with the usual
    page, rendered without the database. The user loaded for this request, if any, is dropped
    for an anonymous one: the page and the language would otherwise load it (again), fail the
    same way and turn the answer into a 500. The request's transaction is rolled back (or went
    with its connection): the person is asked to try again, which is safe — a step sent twice
    is refused as already submitted."""
    try:
        db.session.rollback()
    except SQLAlchemyError:  # the connection is gone; the pool replaces it on the next checkout
        pass
    # Flask-Login's own way to set this request's user; None means anonymous.
    login_manager._update_request_context_with_user()
    current_app.logger.error("database unavailable (%s)", type(getattr(error, "orig", None) or error).__name__)
    return _render(503, None)
