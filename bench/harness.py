"""Running figures: on SQLite, then on PostgreSQL when one answers; one table at the end.

Every figure is a function ``run(db, stack, scale) -> list[Row]``; ``main`` gives each database
engine a fresh database (:class:`~bench.database.BenchDatabase`) and a server stack, runs the
figures in order, and prints the machine, the table and the notes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import (
    DEFAULT_POSTGRES_URL,
    ROOT,
    Row,
    load_average,
    machine,
    notes,
    postgres_version,
    say,
    table,
)
from bench.database import BenchDatabase
from bench.servers import Stack


@dataclass
class Scale:
    """How much: the defaults are the issue's numbers; ``--quick`` is for trying the scripts."""

    #: Waiting referrals for the timer tick and the list pages, and the tick's small baseline.
    referrals: int = 100_000
    small: int = 1_000
    due: int = 100
    #: Outbox messages per drain, and the worker processes to drain them with.
    messages: int = 10_000
    workers: tuple[int, ...] = (1, 2, 4)
    #: Multiplies every HTTP figure's request count.
    requests: float = 1.0

    def n(self, count: int) -> int:
        return max(16, int(count * self.requests))


Figure = Callable[[BenchDatabase, Stack, Scale], list[Row]]


def main(figures: list[Figure], argv: list[str] | None = None, *, results_file: bool = False) -> int:
    """Run ``figures`` on each database; print (and with ``--write``, save) the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_POSTGRES_URL,
                        help="PostgreSQL database to use (its public schema is dropped!); "
                             "default BENCH_DATABASE_URL or %(default)s")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small numbers, to try the scripts")
    parser.add_argument("--referrals", type=int, help="waiting referrals (default 100,000)")
    parser.add_argument("--messages", type=int, help="outbox messages per drain (default 10,000)")
    if results_file:
        parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args(argv)
    scale = Scale(referrals=10_000, messages=1_000, requests=0.3) if args.quick else Scale()
    scale.referrals = args.referrals or scale.referrals
    scale.messages = args.messages or scale.messages

    started, load = time.perf_counter(), load_average()
    pg_version = None if args.sqlite_only else postgres_version(args.postgres)
    kinds = [] if args.postgres_only else ["sqlite"]
    skipped = None
    if pg_version:
        kinds.append("postgresql")
    elif not args.sqlite_only:
        skipped = f"PostgreSQL figures SKIPPED: nothing reachable at {args.postgres}."
        say(skipped)
    rows: list[Row] = []
    failed = False
    for kind in kinds:
        db = BenchDatabase(kind, args.postgres)
        stack = None
        try:
            say(f"{db.label}: fresh database, migrations, demo data")
            db.open()
            stack = Stack(db.env())
            for figure in figures:
                try:
                    rows += _run_figure(figure, db, stack, scale)
                except Exception:  # noqa: BLE001 - report, go on with the next figure, fail at the end
                    traceback.print_exc()
                    failed = True
                    rows.append(Row(_name(figure), db.label, "—", "FAILED: see the output above", "—", "—"))
        except Exception:  # noqa: BLE001 - report, go on with the other database, fail at the end
            traceback.print_exc()
            failed = True
        finally:
            try:
                if stack is not None:
                    stack.close()
                db.close()
            except Exception:  # noqa: BLE001 - cleaning up must not hide the table
                traceback.print_exc()
                failed = True
    elapsed = time.perf_counter() - started
    report = render(rows, pg_version, skipped, elapsed, f"{load} at the start, {load_average()} at the end")
    print("\n" + report, flush=True)
    if results_file and args.write:
        (ROOT / "bench" / "RESULTS.md").write_text(results_markdown(report))
        say("written to bench/RESULTS.md")
    return 1 if failed or not rows else 0


def _name(figure: Figure) -> str:
    return getattr(sys.modules[figure.__module__], "FIGURE", figure.__name__)


def _run_figure(figure: Figure, db: BenchDatabase, stack: Stack, scale: Scale) -> list[Row]:
    """Run one figure; when PostgreSQL was restarted under it (by another process on a shared
    server), wait for it and run the figure once more, saying so in its notes."""
    name = _name(figure)
    say(f"{db.label}: figure {name}")
    started = db.server_started()
    try:
        return figure(db, stack, scale)
    except Exception:
        if started is None or db.server_started(wait=120) in (None, started):
            raise
        traceback.print_exc()
        say(f"{db.label}: the server was restarted during figure {name}; measuring it again")
    rows = figure(db, stack, scale)
    for row in rows:
        row.notes.append("measured a second time: PostgreSQL was restarted by another process during the first")
    return rows


def render(rows: list[Row], pg_version: str | None, skipped: str | None, elapsed: float, load: str) -> str:
    """The machine, the table (by figure, SQLite first) and the notes."""
    rows = sorted(rows, key=lambda r: (r.figure, r.database != "SQLite"))
    lines = ["Measured on:", ""] + [f"- {label}: {value}" for label, value in machine(pg_version)]
    lines.append(f"- load average (1 min): {load}")
    lines += ["", table(rows), ""]
    if skipped:
        lines += [f"**{skipped}**", ""]
    if rows:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes(rows)] + [""]
    lines.append(f"Total benchmark time: {elapsed:,.0f} s.")
    return "\n".join(lines)


def results_markdown(report: str) -> str:
    """bench/RESULTS.md: a title, how to read it, the report."""
    return ("# Benchmark results\n\n"
            "The output of `make bench` (`bench/run_all.py --write`); what each figure measures and how to read "
            "it: [README.md](README.md). Ratios are result / baseline, both measured in the same run.\n\n"
            + report + "\n")
