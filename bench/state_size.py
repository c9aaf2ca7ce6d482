"""Figure 6: the workflow state stored per referral, and how it grows with each completed step.

A GBV referral is walked through the real services (six caseworker steps), both services accept
by SMS, and the worker's tick ends the pathway; ``len(workflow_instances.state)`` is read after
each. Baseline: the answers themselves, as stored in ``form_submissions`` (JSON bytes).
On PostgreSQL the bytes the column takes on disk (TOAST-compressed) are noted too.
"""

from __future__ import annotations

from sqlalchemy import text

from bench.common import Row, ratio
from bench.database import BenchDatabase
from bench.harness import Scale, main
from bench.servers import Stack

FIGURE = "6 Stored state"


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def run(db: BenchDatabase, stack: Stack, scale: Scale) -> list[Row]:
    """Walk a referral to completion and report its state sizes (see the module doc)."""
    walk = db.walk(finish=True)
    sizes = dict(walk.sizes)
    steps = [name for name, _size in walk.sizes[1:] if name not in ("accepted by SMS", "tick")]
    start, sent, final = walk.sizes[0][1], sizes[steps[-1]], walk.sizes[-1][1]
    growth = (sent - start) / len(steps)
    with db.app.app_context():
        from app.extensions import db as sa

        spec = sa.session.execute(text(
            "SELECT length(v.spec_json) FROM pathway_versions v JOIN referrals r ON r.version_id = v.id "
            "WHERE r.id = :id"), {"id": walk.referral_id}).scalar()
        on_disk = sa.session.execute(text(
            "SELECT pg_column_size(i.state) FROM workflow_instances i JOIN referrals r ON r.instance_id = i.id "
            "WHERE r.id = :id"), {"id": walk.referral_id}).scalar() if db.kind == "postgresql" else None
        sa.session.remove()
    trail = " → ".join(f"{name} {_kb(size)}" for name, size in walk.sizes)
    notes = [f"state after each step: {trail}",
             f"the pathway version's spec ({_kb(spec)}) is stored once per version, not per referral"]
    if on_disk:
        notes.append(f"on disk (TOAST-compressed) the final state takes {_kb(on_disk)}")
    return [
        Row(FIGURE, db.label, f"GBV referral, {len(steps)} steps + 2 SMS answers + tick, completed",
            f"{final:,} B final; +{growth:,.0f} B per completed step (start {start:,} B, sent {sent:,} B)",
            f"answers in form_submissions: {walk.answer_bytes:,} B", ratio(final, walk.answer_bytes), notes),
    ]


if __name__ == "__main__":
    raise SystemExit(main([run]))
