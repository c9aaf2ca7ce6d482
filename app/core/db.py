"""Database column types and helpers shared by every domain's models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

_clock_offset = timedelta(0)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC — the one clock of the app and of the workflow
    engine's timers (app.workflow.runtime reads it), so a test can move both at once."""
    return datetime.now(UTC) + _clock_offset


@contextmanager
def clock_moved(by: timedelta) -> Iterator[None]:
    """Tests: run the block as if ``by`` had passed (in this process only)."""
    global _clock_offset
    before = _clock_offset
    _clock_offset = before + by
    try:
        yield
    finally:
        _clock_offset = before


class UTCDateTime(TypeDecorator):
    """A datetime stored in UTC and always returned timezone-aware.

    SQLite has no time zones; PostgreSQL has ``timestamptz``. Either way Python sees an
    aware datetime in UTC, and a naive one is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
