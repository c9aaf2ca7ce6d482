"""Figure 2: the worker's timer tick, with 100 referrals due among 1,000 and then 100,000 waiting.

The waiting referrals are copies of a GBV referral sent to two services (their next timer two
hours to two weeks away); the 100 due ones were sent eight days ago, so their half-time
reminder is due: the tick runs the real ``fire_due_timers`` (batch 50, as ``flask worker`` does)
until nothing is due — each instance locked, loaded, its timer fired (a reminder SMS queued per
service, the focal points notified, audited), stored and committed. The due ones are put back
and the tick repeated. It must not grow with the waiting ones: the baseline is the same tick
with 1,000 waiting, in the same run; and the query that finds the due ones is timed against a
bare SELECT by primary key.
"""

from __future__ import annotations

import statistics
import time

from sqlalchemy import func, select, text

from bench.common import Row, ms, percentile, plan_text, ratio, repeat, say, stopwatch
from bench.database import BenchDatabase
from bench.harness import Scale, main
from bench.servers import Stack

FIGURE = "2 Timer tick"
BATCH = 50
TICKS = 3
QUERIES = 300


def _tick(db: BenchDatabase) -> tuple[float, float, int, int]:
    """One worker pass over the due timers: (seconds, CPU seconds of this process, instances run,
    reminders queued)."""
    from app.extensions import db as sa
    from app.referrals.models import ReferralTarget
    from app.sms.models import OutboxMessage
    from app.workflow.services import fire_due_timers

    db.make_due_again()
    with db.app.app_context():
        ran, cpu = 0, time.process_time()
        with stopwatch() as elapsed:
            while (n := fire_due_timers(limit=BATCH)) > 0:
                ran += n
                if n < BATCH:
                    break
        cpu = time.process_time() - cpu
        reminders = sa.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "reminder", OutboxMessage.target_id.in_(
                select(ReferralTarget.id).where(ReferralTarget.referral_id.in_(db.due.referral_ids)))))
        sa.session.remove()
    return elapsed[0], cpu, ran, reminders


def _queries(db: BenchDatabase, times: int) -> tuple[list[float], list[float], str]:
    """Latencies of finding a batch of due instances and of a bare SELECT by primary key (each
    ``times`` times, interleaved), and the plan of the first."""
    from app.core.db import utcnow
    from app.extensions import db as sa
    from app.workflow.models import WorkflowInstance
    from app.workflow.services import due_instances

    db.make_due_again()
    some = db.due.instance_ids[0]
    due, bare = [], []
    with db.app.app_context():
        now = utcnow()
        for _ in range(times):
            due += repeat(lambda: due_instances(now, BATCH), 1).latencies
            bare += repeat(lambda: sa.session.scalar(select(WorkflowInstance.id).where(WorkflowInstance.id == some)),
                           1).latencies
        plan = _plan(sa.session, now)
        sa.session.remove()
    return due, bare, plan


def _plan(session, now) -> str:
    from app.workflow.models import WorkflowInstance

    query = (select(WorkflowInstance.id)
             .where(WorkflowInstance.next_timer_at <= now, WorkflowInstance.completed.is_(False))
             .order_by(WorkflowInstance.next_timer_at, WorkflowInstance.id).limit(BATCH))
    compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if session.get_bind().dialect.name == "sqlite" else "EXPLAIN "
    return plan_text(session.execute(text(prefix + str(compiled))).all())


def _settle(db: BenchDatabase) -> None:
    """Fire whatever else is due (the walked templates), so each tick runs exactly the due copies."""
    from app.extensions import db as sa
    from app.workflow.services import fire_due_timers

    with db.app.app_context():
        while fire_due_timers(limit=BATCH):
            pass
        sa.session.remove()


def run(db: BenchDatabase, stack: Stack, scale: Scale) -> list[Row]:
    """Ticks with the small and the large set in turn, and the due query (module doc)."""
    # The baseline lives in a second database (another SQLite file, another PostgreSQL schema),
    # so that the two are ticked in turn: load on the machine that drifts hits both alike.
    stack.close()  # no server holds the database while 100,000 referrals are loaded (started again when needed)
    small = BenchDatabase(db.kind, db.postgres_url, schema="bench_tick_baseline").open()
    try:
        for each, waiting in ((small, scale.small), (db, scale.referrals)):
            each.ensure_waiting(waiting, due=scale.due)
            _settle(each)
        say(f"{db.label}: ticking, {scale.small:,} and {scale.referrals:,} waiting in turn")
        ticks: dict[BenchDatabase, list] = {small: [], db: []}
        for _ in range(TICKS):
            for each in (small, db):
                ticks[each].append(_tick(each))
        found: dict[BenchDatabase, tuple[list[float], list[float], str]] = {small: ([], [], ""), db: ([], [], "")}
        for _ in range(3):  # in turn, like the ticks
            for each in (small, db):
                due_times, bare_times, plan = _queries(each, QUERIES // 3)
                found[each] = (found[each][0] + due_times, found[each][1] + bare_times, plan)
        queries = {each: (percentile(d, 50), percentile(b, 50), plan) for each, (d, b, plan) in found.items()}
    finally:
        small.close()
    tick = {each: statistics.median(t[0] for t in ticks[each]) for each in (small, db)}
    cpu = {each: statistics.median(t[1] for t in ticks[each]) for each in (small, db)}
    query, bare, plan = queries[db]
    due = scale.due
    where = "the app and SQLite" if db.kind == "sqlite" else "the app (PostgreSQL's own work not included)"
    notes = [f"instances run per tick: {[t[2] for t in ticks[db]]} (with {scale.small:,} waiting: "
             f"{[t[2] for t in ticks[small]]}); reminder SMS queued per tick: {[t[3] for t in ticks[db]]}",
             f"ticks with {scale.referrals:,} waiting: {', '.join(ms(t[0]) for t in ticks[db])}; with "
             f"{scale.small:,}: {', '.join(ms(t[0]) for t in ticks[small])}; CPU is the worker process's: {where}",
             f"query plan with {scale.referrals:,} waiting: {plan}"]
    if "next_timer_at" not in plan:
        notes.append("WARNING: the due-timer query does not use the next_timer_at index")
    return [
        Row(FIGURE, db.label, f"{due} due among {scale.referrals:,} waiting: worker pass (batch {BATCH}), "
                              f"median of {TICKS}",
            f"{ms(tick[db])} ({ms(tick[db] / due)} per due referral) · CPU {ms(cpu[db])}",
            f"{due} due among {scale.small:,} waiting: {ms(tick[small])} · CPU {ms(cpu[small])}",
            f"time {ratio(tick[db], tick[small])}, CPU {ratio(cpu[db], cpu[small])}", notes),
        Row(FIGURE, db.label, f"finding {BATCH} due among {scale.referrals:,} waiting (due_instances), p50",
            ms(query), f"same among {scale.small:,}: {ms(queries[small][0])}; bare SELECT by primary key: {ms(bare)}",
            f"{ratio(query, queries[small][0])} vs {scale.small:,}; {ratio(query, bare)} vs bare"),
    ]


if __name__ == "__main__":
    raise SystemExit(main([run]))
