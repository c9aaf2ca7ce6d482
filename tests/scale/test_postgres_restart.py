"""PostgreSQL stopped for a few seconds while caseworkers send referrals through gunicorn and the
background workers send their SMS: every request that meets the outage gets the 503 page
(a message, no stack trace), and afterwards everything works again by itself — no server
restarted, nothing lost, no SMS sent twice."""

from __future__ import annotations

import time

import pytest

from app.extensions import db
from tests.scale import postgres_server
from tests.scale.caseworker import Caseworker, Tally, send_referrals
from tests.scale.checks import assert_each_referral_sent_once, log_problems
from tests.scale.processes import server_environment

REFERRALS = 24
OUTAGE_SECONDS = 4
DRAIN_TIMEOUT = 90
UNAVAILABLE = "The service is temporarily unavailable. Please try again in a moment."


@pytest.fixture
def restartable_postgres(app):
    """Skips (fails under REQUIRE_POSTGRES) where the server cannot be restarted; whatever
    happens, PostgreSQL runs again afterwards and this session's dead connections are gone."""
    reason = postgres_server.restartable(app.config["SQLALCHEMY_DATABASE_URI"])
    if reason:
        postgres_server.skip_or_fail(reason)
    try:
        yield
    finally:
        postgres_server.start()
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


def test_postgres_restart_gives_503_then_recovers_by_itself(app, restartable_postgres, caseworkers, fake_twilio,
                                                            processes):
    env = server_environment(app, fake_twilio, GUNICORN_MAX_REQUESTS="0")  # a replaced worker would show
    web = processes.gunicorn(env, workers=4)
    workers = [processes.worker(env) for _ in range(2)]
    web_pids = web.worker_pids()
    outage: dict = {}
    looker = Caseworker(web.url, caseworkers[0], Tally())  # also logged in, looks at other pages
    looker.login()

    def look() -> tuple[int, int]:
        """A page that does not exist and the caseworker's list, as the logged-in caseworker."""
        return (looker.http.get(web.url + "/no-such-page", timeout=30).status_code,
                looker.http.get(web.url + "/referrals/", timeout=30, allow_redirects=False).status_code)

    def restart_postgres(tally: Tally) -> None:
        deadline = time.monotonic() + 120
        while len(tally.sent) < REFERRALS // 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = sum(tally.statuses.values())
        postgres_server.stop()
        outage["during"] = look()  # the error pages need the user, and the user needs the database
        time.sleep(OUTAGE_SECONDS)  # requests keep coming meanwhile
        postgres_server.start()
        outage["requests"] = sum(tally.statuses.values()) - before

    tally = Tally()
    try:
        send_referrals(web.url, caseworkers, REFERRALS, tally, tolerate_503=True, during=restart_postgres)
        outage["after"] = look()
    finally:
        looker.close()

    assert outage["requests"] > 0, outage
    assert outage["during"] == (503, 503) and outage["after"] == (404, 200), outage  # the same session, valid again
    assert tally.unavailable, "no request met the outage"
    assert set(tally.statuses) <= {200, 302, 503} and not tally.dropped, (tally.statuses, tally.dropped)
    for _path, page in tally.unavailable:
        assert UNAVAILABLE in page and "Traceback" not in page and "psycopg" not in page
    # Afterwards, by itself: every referral sent, each SMS once, nothing half-written.
    assert web.alive() and web.worker_pids() == web_pids, "a web worker died"
    assert all(w.alive() for w in workers), "a background worker died"
    assert_each_referral_sent_once(app, fake_twilio, tally, REFERRALS, DRAIN_TIMEOUT)
    for process in [*workers, web]:
        process.stop()
    assert log_problems(processes.stderr()) == []
