"""Figure 1: submitting a step of a real pathway over HTTP, against a bare insert.

Each request is the browser's POST of a GBV referral's step form (``/referrals/<id>/step``), each
for a different referral waiting at that step (bulk copies of one walked through the services):
load the referral and its workflow, validate the form, store the answers, run the engine, store
the state and task rows, audit, and for the *review* step send the referral (two targets, two
SMS queued in the outbox, the providers' focal points notified) — one transaction, then the
redirect. Baseline: the bare app's ``POST /insert`` with the same form, on the same database,
by the same clients.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bench.common import CLIENTS, Row, Samples
from bench.database import CASEWORKER, GBV_ANSWERS, PASSWORD, BenchDatabase
from bench.harness import Scale, main
from bench.servers import Stack, drive, login, status

FIGURE = "1 Step submission"
#: (step id, form key, what it does, requests at scale 1).
STEPS = [
    ("person", "person", "'About the person' step (personal answers kept out of the state)", 150),
    ("review", "review", "'Review and send' step (sends: 2 targets, 2 SMS in the outbox)", 80),
]


def _ready_task(db: BenchDatabase, referral_id: int) -> tuple[str, int]:
    from app.extensions import db as sa
    from app.referrals.models import Referral

    with db.app.app_context():
        referral = sa.session.get(Referral, referral_id)
        task = next(t for t in referral.instance.tasks if t.state == "ready")
        found = task.task_uuid, referral.instance.revision
        sa.session.remove()
        return found


def _done(db: BenchDatabase, referral_ids: list[int], step: str) -> int:
    from app.extensions import db as sa
    from app.referrals.models import FormSubmission

    with db.app.app_context():
        count = sa.session.scalar(select(func.count()).select_from(FormSubmission).where(
            FormSubmission.referral_id.in_(referral_ids), FormSubmission.step == step))
        sa.session.remove()
        return count


def run(db: BenchDatabase, stack: Stack, scale: Scale) -> list[Row]:
    """Both steps against the bare insert, on this database (see the module doc)."""
    rows = []
    for step, form_key, what, count in STEPS:
        count = scale.n(count)
        warm = 2 * CLIENTS
        made = db.clone(db.template(step), warm + count, answers=True)
        referral_ids = [r for r, _i in made]
        task_uuid, revision = _ready_task(db, referral_ids[0])
        answers = GBV_ANSWERS[form_key]
        fields = {"task": task_uuid, "revision": str(revision), "action": "next",
                  "formkit_shown": ",".join(answers), **answers}
        app, bare = stack.app.url, stack.bare.url
        tokens: dict[int, str] = {}

        def setup(session, app=app, tokens=tokens) -> None:
            tokens[id(session)] = login(session, app, CASEWORKER, PASSWORD)

        def submit(session, n: int, base: int, app=app, fields=fields, ids=referral_ids, tokens=tokens):
            return session.post(f"{app}/referrals/{ids[base + n]}/step", allow_redirects=False,
                                data={**fields, "csrf_token": tokens[id(session)]})

        def insert(session, _n: int, bare=bare, fields=fields):
            return session.post(f"{bare}/insert", data=fields)

        drive(lambda s, n: submit(s, n, 0), warm, ok=status(302), setup=setup)  # warm up: caches, connections
        drive(insert, warm, ok=status(201))
        base = drive(insert, max(count, 300), ok=status(201), server=stack.bare)
        measured: Samples = drive(lambda s, n, warm=warm: submit(s, n, warm), count, ok=status(302), setup=setup,
                                  server=stack.app)
        recorded = _done(db, referral_ids[warm:], step)
        rows.append(Row(
            FIGURE, db.label, f"{what}, {CLIENTS} clients", measured.summary(),
            f"bare insert: {base.summary()}", measured.ratios(base),
            [f"{step}: {recorded} of {count} submissions recorded"
             + ("" if recorded == count else " — some requests did not complete the step")]))
    return rows


if __name__ == "__main__":
    raise SystemExit(main([run]))
