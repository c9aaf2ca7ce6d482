"""Figure 5: the caseworker's referral list and the provider's inbox with 100,000 referrals.

The caseworker's organisation holds all the waiting referrals (the worst case for its list);
their 200,000 targets are spread over the directory's services, and the provider measured is the
focal point of the organisation that received the most. Both pages are page 1, as they open
(newest activity / most urgent deadline first, 20 a page, with the total). Baseline: the bare
app's one indexed SELECT (a referral by primary key) on the same database. The notes give each
page's query plans (captured from the real service calls).
"""

from __future__ import annotations

import random

from sqlalchemy import event, select, text

from bench.common import CLIENTS, Row, ms, plan_text, repeat
from bench.database import CASEWORKER, PASSWORD, BenchDatabase
from bench.harness import Scale, main
from bench.servers import Stack, drive, login, status

FIGURE = "5 List pages"
REQUESTS = 200


def _provider(db: BenchDatabase) -> tuple[str, int]:
    """The provider focal point whose organisation received the most targets, and how many."""
    from app.extensions import db as sa

    with db.app.app_context():
        org, count = sa.session.execute(text(
            "SELECT organisation_id, count(*) FROM referral_targets GROUP BY organisation_id "
            "ORDER BY count(*) DESC LIMIT 1")).one()
        email = sa.session.execute(text("SELECT email FROM users WHERE organisation_id = :org AND role = 'provider' "
                                        "ORDER BY id LIMIT 1"), {"org": org}).scalar()
        sa.session.remove()
    return email, count


def plans(db: BenchDatabase, email: str, page: str) -> list[str]:
    """Each SELECT the page's service runs (``list_referrals`` or ``inbox``): its median time over
    five runs, in this process, and its query plan."""
    from app.auth.models import User
    from app.extensions import db as sa
    from app.inbox.services import inbox
    from app.referrals.services import list_referrals

    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    with db.context():
        engine = sa.engine
        user = sa.session.execute(select(User).where(User.email == email)).scalar_one()
        event.listen(engine, "before_cursor_execute", capture)
        try:
            (list_referrals if page == "referrals" else inbox)(user)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        found = []
        with engine.connect() as conn:
            for statement, parameters in statements:
                took = repeat(lambda s=statement, p=parameters: conn.exec_driver_sql(s, p).all(), 5)
                found.append(f"[{ms(took.p(50))}] " + plan_text(conn.exec_driver_sql(prefix + statement,
                                                                                     parameters).all()))
    return found


def _flag(plan: str) -> bool:
    """A full scan or a sort of the whole table, not an index range."""
    return any(word in plan for word in ("Seq Scan", "SCAN referral", "TEMP B-TREE", "Sort ", "Sort Key"))


def run(db: BenchDatabase, stack: Stack, scale: Scale) -> list[Row]:
    """Both pages against one indexed SELECT, with their query plans (module doc)."""
    db.ensure_waiting(scale.referrals, due=scale.due)
    provider, received = _provider(db)
    app, bare = stack.app.url, stack.bare.url
    with db.app.app_context():
        from app.extensions import db as sa

        low, high = sa.session.execute(text("SELECT min(id), max(id) FROM referrals")).one()
        total = sa.session.execute(text("SELECT count(*) FROM referrals")).scalar()
        sa.session.remove()
    rng = random.Random(5)
    picks = [rng.randint(low, high) for _ in range(max(REQUESTS, 300))]

    def one_row(session, n: int):
        return session.get(f"{bare}/select/{picks[n]}")

    drive(one_row, 2 * CLIENTS, ok=status(200))
    base = drive(one_row, len(picks), ok=status(200), server=stack.bare)
    rows = []
    for page, email, what in (("referrals", CASEWORKER, f"caseworker's 'My referrals' ({total:,} in the organisation)"),
                              ("inbox", provider, f"provider's inbox ({received:,} targets to the organisation)")):
        def get(session, _n: int, page=page):
            return session.get(f"{app}/{page}/")

        def setup(session, email=email) -> None:
            login(session, app, email, PASSWORD)

        drive(get, 2 * CLIENTS, ok=status(200), setup=setup)
        measured = drive(get, scale.n(REQUESTS), ok=status(200), setup=setup, server=stack.app)
        found = plans(db, email, page)
        notes = [f"{page} page queries [median time] and plans: " + " || ".join(found)]
        if any(_flag(p) for p in found):
            notes.append(f"WARNING: a query of the {page} page reads or sorts every row of the organisation "
                         "(plans above)")
        rows.append(Row(FIGURE, db.label, f"{what}, page 1, {CLIENTS} clients", measured.summary(),
                        f"bare indexed SELECT: {base.summary()}", measured.ratios(base), notes))
    return rows


if __name__ == "__main__":
    raise SystemExit(main([run]))
