"""What every benchmark shares: timing, percentiles, the result rows and their table, the machine.

A figure's script returns :class:`Row` objects; ``bench/run_all.py`` prints them as one table.
Nothing here is a result: every number comes from samples taken in the run.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ``make bench`` passes BENCH_DATABASE_URL; this default exists on a fresh machine with PostgreSQL.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
#: Concurrent HTTP clients in every HTTP figure.
CLIENTS = 8


@dataclass
class Row:
    """One line of the results table: what was measured, against what, and the ratio."""

    figure: str
    database: str
    configuration: str
    result: str
    baseline: str
    ratio: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Samples:
    """Latencies in seconds, the wall time they were taken in (for a rate), and the CPU seconds
    the server process used meanwhile (when known): CPU per request hardly depends on what else
    runs on the machine, latencies and rates do."""

    latencies: list[float]
    wall: float
    errors: int = 0
    cpu: float | None = None

    @property
    def count(self) -> int:
        return len(self.latencies)

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def rate(self) -> float:
        return self.count / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_each(self) -> float:
        return self.cpu / self.count if self.cpu is not None and self.count else float("nan")

    def summary(self, unit: str = "req/s") -> str:
        """``p50 12.3 ms · p95 20.1 ms · 456 req/s · 4.20 ms CPU/req (n=300)``."""
        text = f"p50 {ms(self.p(50))} · p95 {ms(self.p(95))} · {self.rate:,.0f} {unit}"
        if self.cpu is not None:
            text += f" · {ms(self.cpu_each)} CPU/req"
        return text + f" (n={self.count}" + (f", {self.errors} errors)" if self.errors else ")")

    def ratios(self, baseline: Samples) -> str:
        """The ratios of p50, p95, rate and CPU per request to the baseline's."""
        text = (f"p50 {ratio(self.p(50), baseline.p(50))}, p95 {ratio(self.p(95), baseline.p(95))}, "
                f"req/s {ratio(self.rate, baseline.rate)}")
        if self.cpu is not None and baseline.cpu is not None:
            text += f", CPU/req {ratio(self.cpu_each, baseline.cpu_each)}"
        return text


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) used so far by process ``pid`` (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds used so far by this process's finished (waited-for) child processes."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between the closest ranks."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    """Seconds as milliseconds with sensible precision."""
    value = seconds * 1000
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as ``×12.3`` (or ``×0.04``)."""
    if not baseline or baseline != baseline or value != value:
        return "—"
    r = value / baseline
    return f"×{r:,.2f}" if r < 10 else f"×{r:,.1f}" if r < 100 else f"×{r:,.0f}"


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as elapsed: ...`` then ``elapsed[0]`` is the seconds it took."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - start)


def repeat(fn: Callable[[], object], times: int) -> Samples:
    """Call ``fn()`` ``times`` times in a row; one latency sample per call."""
    latencies = []
    start = time.perf_counter()
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t0)
    return Samples(latencies, time.perf_counter() - start)


def plan_text(rows: Sequence[Sequence]) -> str:
    """An EXPLAIN (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite) result on one line, without costs."""
    import re

    return " / ".join(re.sub(r"\s*\(cost=[^)]*\)", "", str(r[-1])).strip() for r in rows)


def say(text: str) -> None:
    """Progress on stderr-like stdout, flushed (``make bench`` shows it as it goes)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


# -- the machine ------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "?"


def _os() -> str:
    try:
        return platform.freedesktop_os_release()["PRETTY_NAME"]
    except OSError:
        return platform.platform()


def git_commit() -> str:
    """The checked-out commit, marked when the working tree has changes (read-only git calls)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" + uncommitted changes" if dirty else "")


def postgres_version(url: str) -> str | None:
    """The server's version, or None when nothing answers at ``url``."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        return None


def load_average() -> str:
    """The 1-minute load average (other processes compete for the same cores)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def machine(pg_version: str | None) -> list[tuple[str, str]]:
    """What the numbers were measured on, as (label, value) pairs."""
    return [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("commit", git_commit()),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("RAM", _ram()),
        ("OS", _os()),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", pg_version or "not reachable: PostgreSQL figures skipped"),
    ]


# -- the table --------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    """The rows as one Markdown table (readable in a terminal too)."""
    head = ["Figure", "DB", "Configuration", "Result", "Baseline (same run)", "Ratio"]
    lines = [head] + [[r.figure, r.database, r.configuration, r.result, r.baseline, r.ratio] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "/").ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(line) for line in lines[1:]]
    return "\n".join(out)


def notes(rows: list[Row]) -> list[str]:
    """Every row's notes, each prefixed with its figure and database."""
    return [f"{r.figure} ({r.database}): {n}" for r in rows for n in r.notes]
