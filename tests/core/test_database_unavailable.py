"""Which errors mean "the database cannot be reached" (a 503 page) rather than a bug (a 500):
also when something wrapped the database's error — the workflow engine reports a failed
service task as its own exception. And a connection cut under a request's or a worker's
session (PostgreSQL: ``pg_terminate_backend``) ends neither. The real outage is in
tests/scale/test_postgres_restart.py."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from app.core.errors import unavailable_database_error
from app.extensions import db
from app.sms.cli import _end_session


class EngineError(Exception):
    """Stands for the workflow engine's wrapper of a service task's failure."""


def _wrapped(inner: BaseException, *, explicitly: bool) -> EngineError:
    try:
        try:
            raise inner
        except Exception as exc:
            if explicitly:
                raise EngineError("service task 'send_referral' failed") from exc
            raise EngineError("service task 'send_referral' failed")  # noqa: B904 - the implicit context
    except EngineError as outer:
        return outer


def test_a_database_error_is_found_however_it_was_wrapped():
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert unavailable_database_error(down) is down
    assert unavailable_database_error(_wrapped(down, explicitly=True)) is down
    assert unavailable_database_error(_wrapped(down, explicitly=False)) is down
    closed = InterfaceError("SELECT 1", {}, Exception("the connection is closed"))
    assert unavailable_database_error(_wrapped(closed, explicitly=True)) is closed


def test_other_errors_are_bugs():
    assert unavailable_database_error(ValueError("bad")) is None
    duplicate = IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert unavailable_database_error(_wrapped(duplicate, explicitly=True)) is None
    looping = ValueError("a")
    looping.__context__ = ValueError("b")
    looping.__context__.__context__ = looping
    assert unavailable_database_error(looping) is None


def _cut_my_connection(app) -> None:
    """PostgreSQL ends the session's connection, as a restart would."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("PostgreSQL only: pg_terminate_backend cuts one connection")
    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()  # a transaction is open now
    with db.engine.connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        other.commit()


def test_a_connection_cut_before_the_end_of_a_request_does_not_fail_the_answer(app, client):
    with app.test_request_context("/health"):
        _cut_my_connection(app)
        app.do_teardown_request()  # the rollback finds the connection gone: logged, not raised
    assert client.get("/health").status_code == 200  # the pool opened another


def test_a_connection_cut_under_the_worker_is_dropped_and_replaced(app_ctx, app):
    _cut_my_connection(app)
    _end_session()  # the worker's loop goes on
    assert db.session.execute(text("SELECT 1")).scalar() == 1
