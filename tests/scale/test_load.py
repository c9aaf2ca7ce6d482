"""Load: referrals created and sent at once through the HTTP interface of real gunicorn
workers by 24 caseworkers, the SMS sent by real background workers to the fake Twilio server.

PostgreSQL: 200 referrals, 4 web workers and 2 background workers. SQLite: 100 referrals, 2
web workers and 1 background worker, and never a ``database is locked``."""

from __future__ import annotations

import re

from tests.scale.caseworker import Tally, send_referrals
from tests.scale.checks import assert_each_referral_sent_once, log_problems
from tests.scale.processes import server_environment

DRAIN_TIMEOUT = 90


def test_referrals_sent_at_once_each_sms_exactly_once(app, caseworkers, fake_twilio, processes):
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    referrals, web_workers, background_workers = (200, 4, 2) if postgres else (100, 2, 1)
    env = server_environment(app, fake_twilio)
    web = processes.gunicorn(env, workers=web_workers)
    workers = [processes.worker(env) for _ in range(background_workers)]

    tally = Tally()
    send_referrals(web.url, caseworkers, referrals, tally)

    sent = assert_each_referral_sent_once(app, fake_twilio, tally, referrals, DRAIN_TIMEOUT)
    targets = [t for rows in sent.values() for t in rows]
    assert all(len(rows) == 2 for rows in sent.values())
    assert sorted(m.to for m in fake_twilio.messages) == sorted(phone for _id, _code, phone in targets)
    assert set(tally.statuses) <= {200, 302} and not tally.dropped, (tally.statuses, tally.dropped)

    for process in [*workers, web]:
        process.stop()
    assert all(w.popen.returncode == 0 for w in workers)  # SIGTERM: finished the batch, exited cleanly
    assert log_problems(processes.stderr()) == []
    statuses = [re.search(r'" (\d{3}) ', line).group(1) for line in web.access_log()]
    assert len(statuses) == sum(tally.statuses.values())
    assert not [s for s in statuses if s.startswith("5")]
    served_by = {line.split()[0] for line in web.access_log()}
    assert len(served_by) >= web_workers  # all took part (more pids: workers replaced after max_requests)
