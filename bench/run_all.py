"""Every benchmark, on SQLite and then on PostgreSQL (when one answers), as one table.

``python -m bench.run_all [--write] [--postgres URL] [--quick]`` — ``make bench`` runs it with
``--write``, which saves the output to bench/RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

from bench import inbound_webhook, list_pages, outbox_drain, state_size, step_submission, timer_tick
from bench.harness import main

#: In this order on each database: the tick seeds the 100,000 waiting referrals that the list
#: pages and the webhook then use; the drain runs last (its workers would also fire due timers).
FIGURES = [state_size.run, step_submission.run, timer_tick.run, list_pages.run, inbound_webhook.run,
           outbox_drain.run]

if __name__ == "__main__":
    raise SystemExit(main(FIGURES, results_file=True))
