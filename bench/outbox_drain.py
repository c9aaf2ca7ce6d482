"""Figure 3: draining 10,000 outbox messages through the real Twilio SDK, with 1, 2 and 4 workers.

The fake Twilio server of the tests (``tests/sms/fake_twilio.py``, on 127.0.0.1) receives every
message. The workers are real ``flask --app wsgi worker --once`` processes with
``SMS_BACKEND=twilio``: each claims batches of 50 (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), sends each message with the SDK, and records each result with a
fenced update. The rate is messages over the time from the first message the server received
to the last (process start-up excluded; the wall time is in the notes), and every message is
checked: sent once, recorded ``sent``. Baseline: the same number of processes calling the raw
SDK's ``client.messages.create`` in a loop against the same server (no database).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from collections import Counter

from sqlalchemy import delete, func, insert, select
from twilio.http.http_client import TwilioHttpClient

from bench.common import ROOT, Row, children_cpu, ms, ratio, say, stopwatch
from bench.database import BenchDatabase
from bench.harness import Scale, main
from bench.servers import Stack

FIGURE = "3 Outbox drain"
BATCH = 50
#: Messages per baseline run (a rate; no need for the full 10,000).
RAW_MESSAGES = 1_000
BODY = ("New referral {code}: Safe shelter, normal, answer by 12/8/26, 9:30 AM UTC. Reply ACCEPT {code} or "
        "DECLINE {code}. https://pathways.example.org/inbox/{n}")


class _Received:
    """When the fake server recorded each message (its ``after_record`` hook)."""

    def __init__(self, fake):
        self.times: list[float] = []
        self.lock = threading.Lock()
        fake.after_record = self.record

    def record(self, _message) -> None:
        with self.lock:
            self.times.append(time.perf_counter())

    def reset(self) -> None:
        with self.lock:
            self.times.clear()

    def rate(self) -> float:
        return (len(self.times) - 1) / (self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0


class _LocalHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, pointed at the fake server."""

    def __init__(self, base_url: str):
        super().__init__(pool_connections=True, timeout=10)
        self.base_url = base_url

    def request(self, method, url, **kwargs):
        return super().request(method, url.replace("https://api.twilio.com", self.base_url), **kwargs)


def _raw_sender(config: dict, start: int, count: int) -> None:
    """A baseline process: ``client.messages.create`` ``count`` times, nothing else."""
    from twilio.rest import Client

    client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
                    http_client=_LocalHttpClient(config["TWILIO_API_BASE_URL"]))
    for n in range(start, start + count):
        client.messages.create(to=f"+4870{n:07d}", from_=config["TWILIO_FROM_NUMBER"],
                               body=BODY.format(code=f"{n:06d}", n=n),
                               status_callback=f"https://pathways.example.org/sms/status?outbox={n}")


def _raw(fake, received: _Received, processes: int, total: int) -> tuple[float, float]:
    """The baseline: (messages/s, CPU seconds per message of the sending processes)."""
    received.reset()
    cpu = children_cpu()
    context = multiprocessing.get_context("spawn")
    share = total // processes
    workers = [context.Process(target=_raw_sender, args=(fake.gateway_config(), i * share, share))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if len(received.times) != share * processes:
        raise RuntimeError(f"baseline: {len(received.times)} of {share * processes} messages arrived")
    return received.rate(), (children_cpu() - cpu) / (share * processes)


def _queue(db: BenchDatabase, count: int) -> None:
    """An empty outbox, then ``count`` queued messages (referral SMS, each to its own number)."""
    from app.core.db import utcnow
    from app.extensions import db as sa
    from app.sms.models import OutboxMessage, OutboxStatus
    from app.workflow.services import fire_due_timers

    with db.app.app_context():
        while fire_due_timers(limit=BATCH):  # the workers fire due timers first: leave them none
            pass
        sa.session.execute(delete(OutboxMessage))
        now = utcnow()
        rows = [{"idempotency_key": f"bench:{n}", "recipient": f"+4860{n:07d}", "locale": "en",
                 "body": BODY.format(code=f"B{n:05d}", n=n), "kind": "referral", "status": OutboxStatus.queued,
                 "attempts": 0, "next_attempt_at": now, "fence": 0, "created_at": now, "updated_at": now}
                for n in range(count)]
        for start in range(0, count, 2000):
            sa.session.execute(insert(OutboxMessage), rows[start:start + 2000])
        sa.session.commit()
        sa.session.remove()


def _outcome(db: BenchDatabase) -> dict[str, int]:
    from app.extensions import db as sa
    from app.sms.models import OutboxMessage

    with db.app.app_context():
        found = {status.value: n for status, n in sa.session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))}
        sa.session.remove()
    return found


def _drain(db: BenchDatabase, fake, received: _Received, processes: int) -> tuple[float, float]:
    """Real worker processes until the outbox is empty: (wall seconds, the workers' CPU seconds)."""
    config = fake.gateway_config(SMS_TIMEOUT_SECONDS="10")
    env = db.env(SMS_BACKEND="twilio", **{k: str(v) for k, v in config.items()})
    received.reset()
    cpu = children_cpu()
    with stopwatch() as wall:
        workers = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--once",
                                     "--batch", str(BATCH)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
                   for _ in range(processes)]
        codes = [worker.wait() for worker in workers]
    if any(codes):
        raise RuntimeError(f"worker exit codes {codes}")
    return wall[0], children_cpu() - cpu


def run(db: BenchDatabase, stack: Stack, scale: Scale) -> list[Row]:
    """Drains with each number of workers against the raw SDK (see the module doc)."""
    from tests.sms.fake_twilio import FakeTwilio

    fake = FakeTwilio().start()
    received = _Received(fake)
    rows = []
    try:
        # SQLite has one writer at a time (claims take BEGIN IMMEDIATE): the one-machine setup runs one worker.
        for processes in scale.workers if db.kind == "postgresql" else scale.workers[:1]:
            raw, raw_cpu = _raw(fake, received, processes, min(RAW_MESSAGES, scale.messages))
            _queue(db, scale.messages)
            say(f"{db.label}: draining {scale.messages:,} messages with {processes} worker(s)")
            wall, cpu = _drain(db, fake, received, processes)
            rate, outcome, cpu = received.rate(), _outcome(db), cpu / scale.messages
            sent_twice = sum(1 for n in Counter(m.outbox_id for m in fake.messages[-len(received.times):]).values()
                             if n > 1)
            note = (f"{processes} worker(s): outbox {', '.join(f'{k} {v:,}' for k, v in outcome.items())} after "
                    f"{wall:,.1f} s wall (process start-up included); {len(received.times):,} received, "
                    f"{sent_twice} outbox ids sent twice; CPU is the sending processes' (start-up included)")
            rows.append(Row(FIGURE, db.label, f"{scale.messages:,} messages, {processes} worker process(es), "
                                              "Twilio SDK → fake server",
                            f"{rate:,.0f} msg/s · {ms(cpu)} CPU/msg",
                            f"raw SDK create() loop, {processes} process(es): {raw:,.0f} msg/s · {ms(raw_cpu)} CPU/msg",
                            f"msg/s {ratio(rate, raw)}, CPU/msg {ratio(cpu, raw_cpu)}", [note]))
    finally:
        fake.stop()
    return rows


if __name__ == "__main__":
    raise SystemExit(main([run]))
