"""The machine's PostgreSQL server, stopped and started for real (``pg_ctlcluster``), for the
test of an outage. Only where it is ours to restart: the test database on 127.0.0.1:5432,
run as root; elsewhere the test skips, unless REQUIRE_POSTGRES is set (CI), where it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CONTROL_TIMEOUT = 60


def version() -> str | None:
    found = sorted(p.name for p in Path("/etc/postgresql").glob("*") if p.is_dir()) if Path(
        "/etc/postgresql").is_dir() else []
    return found[0] if found else None


def restartable(database_url: str) -> str | None:
    """Why the server behind ``database_url`` cannot be restarted here (None: it can)."""
    if not database_url.startswith("postgresql"):
        return "PostgreSQL only: the outage test restarts the PostgreSQL server"
    parts = urlsplit(database_url)
    if parts.hostname not in ("127.0.0.1", "localhost") or (parts.port or 5432) != 5432:
        return f"the test database is not the local server on 127.0.0.1:5432 ({parts.hostname}:{parts.port})"
    if os.geteuid() != 0:
        return "restarting PostgreSQL needs root (pg_ctlcluster)"
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_isready") is None or version() is None:
        return "pg_ctlcluster, pg_isready or /etc/postgresql/<version> is missing"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; under REQUIRE_POSTGRES (CI) a PostgreSQL test may not skip: fail."""
    if os.environ.get("REQUIRE_POSTGRES") and not reason.startswith("PostgreSQL only"):
        pytest.fail(f"REQUIRE_POSTGRES is set, but {reason}")
    pytest.skip(reason)


def _control(action: str, *options: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *options, version(), "main", action],
                   check=True, timeout=CONTROL_TIMEOUT, capture_output=True)


def ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], timeout=10).returncode == 0


def stop() -> None:
    """Fast shutdown: open sessions are ended, their transactions rolled back."""
    _control("stop", "-m", "fast")


def start() -> None:
    """Start the server (if it is not running) and wait until it accepts connections."""
    if not ready():
        try:
            _control("start")
        except subprocess.CalledProcessError:
            if not ready():  # someone else started it meanwhile: fine
                raise
    deadline = time.monotonic() + CONTROL_TIMEOUT
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not come back in {CONTROL_TIMEOUT} s")
        time.sleep(0.2)
