"""Load and faults, end to end through the real Twilio SDK to the fake Twilio: worker processes
racing over 1,000 messages, Twilio down then back, a worker killed right after Twilio took a
message, permanent errors. Whatever happens: every message reaches Twilio exactly once, or is
failed for a reason and never attempted again."""

from __future__ import annotations

import os
import re
import signal
import threading
from datetime import timedelta

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.core.db import utcnow
from app.extensions import db
from app.sms.models import OptOut, OutboxStatus
from app.sms.worker import drain_once
from tests.sms.fake_twilio import fake_twilio  # noqa: F401 - the fixture
from tests.sms.helpers import queue, received_per_outbox, rows, twilio_gateway, worker_process

PROCESS_TIMEOUT = 120


def _finish(process) -> str:
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, err[-3000:]
    return out


def test_four_worker_processes_send_a_thousand_messages_once_each(app, fake_twilio):  # noqa: F811
    with app.app_context():
        ids = queue(1000, prefix="load")
    workers = [worker_process(app, fake_twilio, batch=25) for _ in range(4)]
    outputs = [_finish(w) for w in workers]
    counts = received_per_outbox(fake_twilio)
    assert len(fake_twilio.messages) == 1000
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    found = rows(app)
    assert {m.status for m in found.values()} == {OutboxStatus.sent}
    assert {m.id: m.provider_id for m in found.values()} == {m.outbox_id: m.sid for m in fake_twilio.messages}
    sent = [sum(int(n) for n in re.findall(r"^sent (\d+)", out, re.MULTILINE)) for out in outputs]
    assert sum(sent) == 1000 and all(sent), sent  # each process took part


def test_twilio_down_then_back_loses_nothing_and_sends_once(app, fake_twilio):  # noqa: F811
    with app.app_context():
        ids = queue(20, prefix="down")
    now = utcnow()
    fake_twilio.clock = lambda: now  # Twilio's clock moves with the worker's
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        fake_twilio.refuse_connections()  # connection refused: nothing left, retried with backoff
        for _ in range(3):
            assert drain_once(gateway, "w1", now=now).retried == 20
            now += timedelta(hours=1)
        fake_twilio.accept_connections()
        for _ in range(3):  # back, but the first answers are 503s: Twilio took these three ...
            fake_twilio.fail_next(503, 20500, record=True)
        for _ in range(4):  # ... and not these four: all seven are in doubt
            fake_twilio.fail_next(503, 20500)
        first = drain_once(gateway, "w1", now=now)
        assert (first.sent, first.unknown) == (13, 7)
        fake_twilio.refuse_connections()  # down again while reconciling: nothing decided
        now += timedelta(minutes=2)
        assert drain_once(gateway, "w1", now=now).reconciled == 0
        fake_twilio.accept_connections()
        for _ in range(5):
            drain_once(gateway, "w1", now=now)
            now += timedelta(minutes=2)
    counts = received_per_outbox(fake_twilio)
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    found = rows(app)
    assert {m.status for m in found.values()} == {OutboxStatus.sent}
    assert max(m.attempts for m in found.values()) == 5  # three refused, a 503, then sent
    assert {m.provider_id for m in found.values()} == {m.sid for m in fake_twilio.messages}


def test_a_worker_killed_after_twilio_took_the_message(app, fake_twilio):  # noqa: F811
    with app.app_context():
        ids = queue(5, prefix="kill")
    victim = ids[2]
    killed = threading.Event()
    holder = {}

    def kill_the_worker(message):
        if message.outbox_id != victim:
            return True
        killed.set()
        os.kill(holder["process"].pid, signal.SIGKILL)  # Twilio has it; the worker never hears
        return False

    fake_twilio.after_record = kill_the_worker
    holder["process"] = worker_process(app, fake_twilio)
    holder["process"].communicate(timeout=PROCESS_TIMEOUT)
    assert killed.is_set() and holder["process"].returncode == -signal.SIGKILL
    fake_twilio.after_record = None
    found = rows(app)
    assert [found[i].status for i in ids] == [OutboxStatus.sent] * 2 + [OutboxStatus.sending] * 3

    lease = timedelta(seconds=app.config["SMS_LEASE_SECONDS"] + 1)
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        assert drain_once(gateway, "w2").unknown == 0  # the lease has not run out yet
        expired = drain_once(gateway, "w2", now=utcnow() + lease)
        settled = drain_once(gateway, "w2", now=utcnow() + lease + timedelta(seconds=61))
    assert expired.unknown == 3
    assert (settled.reconciled, settled.requeued, settled.sent) == (1, 2, 2)
    assert received_per_outbox(fake_twilio) == {i: 1 for i in ids}
    found = rows(app)
    assert {found[i].status for i in ids} == {OutboxStatus.sent}
    assert found[victim].provider_id == next(m.sid for m in fake_twilio.messages if m.outbox_id == victim)


def test_permanent_errors_are_attempted_once_and_never_again(app, fake_twilio):  # noqa: F811
    codes = ["21211", "21610", "21612", "21614"]
    with app.app_context():
        ids = queue(4, prefix="perm")
    for code in codes:
        fake_twilio.fail_next(status=400, code=int(code))
    now = utcnow()
    with twilio_gateway(fake_twilio) as gateway, app.app_context():
        assert drain_once(gateway, "w1", now=now).failed == 4
        for days in range(1, 6):
            result = drain_once(gateway, "w1", now=now + timedelta(days=days))
            assert (result.claimed, result.reconciled, result.requeued) == (0, 0, 0)
        failed_events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sms.failed")).all()
        opt_outs = {o.phone: o.source for o in db.session.scalars(select(OptOut))}
    assert [p for p in fake_twilio.requests if p[0] == "POST"] == [fake_twilio.requests[0]] * 4
    assert fake_twilio.messages == []
    found = rows(app)
    assert [(found[i].status, found[i].error_code, found[i].attempts) for i in ids] == [
        (OutboxStatus.failed, code, 1) for code in codes]
    assert opt_outs == {found[ids[1]].recipient: "carrier"}
    assert sorted(e.detail["outbox"] for e in failed_events) == ids
