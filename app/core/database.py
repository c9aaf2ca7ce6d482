"""Engine settings and the one-commit-per-request rule."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)

    @app.teardown_request
    def _rollback_uncommitted(exc):  # noqa: ARG001
        # A request that did not commit leaves nothing behind.
        try:
            db.session.rollback()
        except SQLAlchemyError:
            # The connection broke after the answer was made (the database restarted): the
            # server has dropped the transaction already, and the pool replaces the connection.
            # Raising here would turn that answer into a bare 500.
            app.logger.warning("database connection lost at the end of a request")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def is_sqlite(engine: Engine | None = None) -> bool:
    return (engine or db.engine).dialect.name == "sqlite"
