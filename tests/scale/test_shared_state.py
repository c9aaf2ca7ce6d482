"""State that outlives a request is shared by every web worker process: failed logins spread
over two gunicorn workers still throttle the account; a login session made by one worker is
valid in the other, and a logout in one ends it in both. Behind one proxy hop
(``PROXY_FIX_HOPS=1``), the address recorded is the one the proxy saw, not what the client
claims."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import select

from app.auth.models import LoginAttempt
from app.extensions import db
from tests import factories
from tests.scale.processes import server_environment

MAX_FAILURES = 8
TIMEOUT = 30
PROXY_SAW = "198.51.100.7"
#: What a client put in X-Forwarded-For itself; the proxy appended the address it saw.
FORWARDED_FOR = f"203.0.113.66, {PROXY_SAW}"


def _token(http: requests.Session, path: str) -> str:
    page = http.get(path, timeout=TIMEOUT).text
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def _pids(web, method: str, path: str, status: int) -> set[str]:
    """The worker processes (from the access log) that answered ``method path`` with ``status``."""
    return {line.split()[0] for line in web.access_log() if f'"{method} {path} HTTP/1.1" {status} ' in line}


def _at_once(count: int, action) -> list:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return [f.result(timeout=TIMEOUT * 2) for f in [pool.submit(action, n) for n in range(count)]]


def test_throttling_and_sessions_hold_across_web_workers(app, fake_twilio, processes):
    with app.app_context():
        email = factories.user("caseworker").email
        db.session.commit()
        db.session.remove()
    env = server_environment(app, fake_twilio, LOGIN_MAX_FAILURES_PER_ACCOUNT=str(MAX_FAILURES),
                             PROXY_FIX_HOPS="1")
    web = processes.gunicorn(env, workers=2)
    headers = {"X-Forwarded-For": FORWARDED_FOR, "X-Forwarded-Proto": "http"}

    def wrong_password(_n: int) -> int:
        with requests.Session() as http:
            http.headers.update(headers)
            token = _token(http, web.url + "/login")
            return http.post(web.url + "/login", data={"email": email, "password": "not the password",
                                                       "csrf_token": token}, timeout=TIMEOUT).status_code

    assert _at_once(MAX_FAILURES, wrong_password) == [401] * MAX_FAILURES
    assert len(_pids(web, "POST", "/login", 401)) == 2  # both workers counted failures
    with app.app_context():
        addresses = set(db.session.scalars(select(LoginAttempt.address)))
        db.session.remove()
    assert addresses == {PROXY_SAW}  # one hop trusted: the client's own claim is ignored

    with requests.Session() as http:
        http.headers.update(headers)
        token = _token(http, web.url + "/login")
        throttled = http.post(web.url + "/login", data={"email": email, "password": factories.PASSWORD,
                                                        "csrf_token": token}, timeout=TIMEOUT, allow_redirects=False)
    assert throttled.status_code == 429  # the right password, but the account is throttled everywhere

    with app.app_context():  # another caseworker, to use one session from many workers
        email = factories.user("caseworker").email
        db.session.commit()
        db.session.remove()
    session = requests.Session()
    try:
        token = _token(session, web.url + "/login")
        login = session.post(web.url + "/login", data={"email": email, "password": factories.PASSWORD,
                                                       "csrf_token": token}, timeout=TIMEOUT, allow_redirects=False)
        assert login.status_code == 302
        cookies = session.cookies.get_dict()

        def my_referrals(_n: int) -> int:
            with requests.Session() as http:
                http.cookies.update(cookies)
                return http.get(web.url + "/referrals/", timeout=TIMEOUT, allow_redirects=False).status_code

        assert _at_once(12, my_referrals) == [200] * 12
        assert len(_pids(web, "GET", "/referrals/", 200)) == 2  # the session is valid in both workers
        logout = session.post(web.url + "/logout", data={"csrf_token": _token(session, web.url + "/referrals/")},
                              timeout=TIMEOUT, allow_redirects=False)
        assert logout.status_code == 302
        assert _at_once(12, my_referrals) == [302] * 12  # the old cookie, revoked in both
        assert len(_pids(web, "GET", "/referrals/", 302)) == 2
    finally:
        session.close()
