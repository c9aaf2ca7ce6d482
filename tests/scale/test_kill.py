"""SIGKILL in the middle of the run: a gunicorn worker inside a caseworker's request, its
transaction open (gunicorn starts another; the caseworker looks again and carries on), and a
background worker while Twilio holds its message and has not answered (another is started).
Afterwards no referral is half-written (``tests/scale/checks.py``) and every SMS went out
exactly once: the dead worker's claims expire, the message Twilio took is found there and not
sent again, the ones it never sent are sent."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, text

from app.audit.models import AuditEvent
from app.extensions import db
from app.sms.models import OutboxMessage
from tests.scale.caseworker import Tally, send_referrals
from tests.scale.checks import assert_each_referral_sent_once, log_problems
from tests.scale.processes import server_environment

REFERRALS = 30
#: The background worker dies while Twilio holds this SMS (counting from 1).
KILL_AT_SMS = 10
#: A web worker is killed in the middle of a request once this many referrals are sent.
KILL_WEB_AFTER = 5
DRAIN_TIMEOUT = 90


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_web_and_background_workers_lose_and_duplicate_nothing(app, caseworkers, fake_twilio, processes):
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    web_workers, background_workers = (4, 2) if postgres else (2, 1)
    env = server_environment(app, fake_twilio, GUNICORN_MAX_REQUESTS="0")  # only the kill replaces a worker
    web = processes.gunicorn(env, workers=web_workers)
    background = [processes.worker(env) for _ in range(background_workers)]
    killed: dict = {}
    lock = threading.Lock()

    def kill_the_sender(message) -> bool:
        """Twilio took the message; its worker dies before hearing so, holding its other claims."""
        with lock:
            if "sms" in killed or len(fake_twilio.messages) < KILL_AT_SMS:
                return True
            with app.app_context():
                claimed_by = db.session.scalar(select(OutboxMessage.claimed_by).where(
                    OutboxMessage.id == message.outbox_id))
                db.session.remove()
            pid = int(claimed_by.split(":")[-2])  # host:pid:nonce
            killed["sms"], killed["worker"] = message.outbox_id, pid
            os.kill(pid, signal.SIGKILL)
            return False  # never answered

    def kill_workers(tally: Tally) -> None:
        _wait(lambda: len(tally.sent) >= KILL_WEB_AFTER, 120, "the first referrals")
        with writes_frozen(app):  # requests that write wait, inside their transaction
            stuck: set = set()
            deadline = time.monotonic() + 30
            while not stuck and time.monotonic() < deadline:
                stuck = web.connections()
                for _look in range(2):
                    time.sleep(0.5)
                    stuck &= web.connections()  # the same request, still unanswered a second later
            assert stuck, "no web worker was waiting for the database"
            pid = min(stuck)[0]
            os.kill(pid, signal.SIGKILL)  # its caseworker's request dies with it
            killed["web"] = pid
        _wait(lambda: pid not in web.worker_pids() and len(web.worker_pids()) == web_workers, 30,
              "gunicorn to replace the killed worker")
        _wait(lambda: "worker" in killed, 120, "the background worker to be killed")
        next(w for w in background if w.pid == killed["worker"]).popen.wait(timeout=10)
        background.append(processes.worker(env))  # restarted

    fake_twilio.after_record = kill_the_sender
    tally = Tally()
    send_referrals(web.url, caseworkers, REFERRALS, tally, during=kill_workers)
    fake_twilio.after_record = None

    assert victim_killed(background, killed["worker"])
    assert len(tally.dropped) == 1, tally.dropped  # the killed web worker's request, and only that
    assert set(tally.statuses) <= {200, 302}, tally.statuses
    assert_each_referral_sent_once(app, fake_twilio, tally, REFERRALS, DRAIN_TIMEOUT)
    with app.app_context():
        in_doubt = db.session.get(OutboxMessage, killed["sms"])
        assert in_doubt.provider_id == next(m.sid for m in fake_twilio.messages if m.outbox_id == in_doubt.id)
        expired = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sms.unknown")).all()
        assert in_doubt.id in {e.detail["outbox"] for e in expired}  # found by reconciliation, not resent
        assert {e.detail["error"] for e in expired} == {"lease_expired"}
        db.session.remove()

    for process in [*background, web]:
        process.stop()
    assert log_problems(processes.stderr()) == []


@contextmanager
def writes_frozen(app) -> Iterator[None]:
    """Hold the database's write lock meanwhile (SQLite), or PostgreSQL's locks on the workflow
    instances and the audit trail, which every step writes: a request that writes waits, its
    transaction open."""
    with app.app_context(), db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("LOCK TABLE workflow_instances, audit_events IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()
            db.session.remove()


def victim_killed(background, pid: int) -> bool:
    return any(w.pid == pid and w.popen.returncode == -signal.SIGKILL for w in background)
