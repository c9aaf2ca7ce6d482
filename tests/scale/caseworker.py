"""A caseworker at a browser, over real HTTP: log in, start a GBV referral, answer each step of
the guided form as it comes, choose two matching services and send.

The client tells the steps apart by the fields on the page, so after a request that died
with its server (connection reset: the process was killed) it simply looks at where the
referral stands now and goes on from there."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from tests.factories import PASSWORD
from tests.referrals.test_protection_referrals import ADULT, CONSENT_ANY, INTAKE, SAFETY

TIMEOUT = 60
#: How long a caseworker keeps trying a request that got no answer, or a 503 page.
RETRY_SECONDS = 60
RETRY_PAUSE = 0.3
#: Steps of a referral at most (six, and a few again after lost answers).
MAX_STEPS = 30
#: All the referrals of a test sent, at most (a slow, shared machine takes a few minutes).
SEND_TIMEOUT = 480

#: A field only the step's form has -> the answers given there.
STEPS = {
    "consent_given": CONSENT_ANY,
    "full_name": ADULT,
    "trafficking_indicators": INTAKE,
    "immediate_danger": SAFETY,
    "confirm_send": {"confirm_send": "yes"},
}


class Unexpected(AssertionError):
    """A response no caseworker should ever get (a 4xx or 5xx, a missing step)."""


@dataclass
class Tally:
    """What the caseworkers saw, shared by their threads."""

    statuses: Counter = field(default_factory=Counter)
    #: Requests that got no answer at all (their server process was killed), by method and path.
    dropped: list[str] = field(default_factory=list)
    #: 503 pages: (path, body) — only the PostgreSQL restart test expects any.
    unavailable: list[tuple[str, str]] = field(default_factory=list)
    #: Referrals sent: id -> number of requests it took.
    sent: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Caseworker:
    def __init__(self, base_url: str, email: str, tally: Tally, *, tolerate_503: bool = False):
        self.base_url = base_url
        self.email = email
        self.tally = tally
        self.tolerate_503 = tolerate_503
        self.http = requests.Session()
        self.csrf = ""
        #: Requests made (answered or not), for the referral being sent.
        self.requests = 0

    def close(self) -> None:
        self.http.close()

    # -- requests -------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs) -> requests.Response | None:
        """One request; None when the connection died without an answer (counted in ``dropped``)."""
        self.requests += 1
        try:
            response = self.http.request(method, self.base_url + path, timeout=TIMEOUT, allow_redirects=False,
                                         **kwargs)
        except requests.ConnectionError:
            with self.tally.lock:
                self.tally.dropped.append(f"{method} {path}")
            return None
        with self.tally.lock:
            self.tally.statuses[response.status_code] += 1
            if response.status_code == 503:
                self.tally.unavailable.append((path, response.text))
        if response.status_code == 503 and self.tolerate_503:
            return None
        if response.status_code >= 400:
            raise Unexpected(f"{method} {path}: {response.status_code}\n{response.text[:3000]}")
        return response

    def retrying(self, method: str, path: str, **kwargs) -> requests.Response:
        """``request`` again until it gets an answer (for RETRY_SECONDS at most)."""
        deadline = time.monotonic() + RETRY_SECONDS
        while time.monotonic() < deadline:
            response = self.request(method, path, **kwargs)
            if response is not None:
                return response
            time.sleep(RETRY_PAUSE)
        raise Unexpected(f"{method} {path}: no answer in {RETRY_SECONDS} s")

    # -- the caseworker's work ------------------------------------------------------------------

    def login(self) -> None:
        token = _hidden(self.retrying("GET", "/login").text, "csrf_token")
        response = self.retrying("POST", "/login", data={"email": self.email, "password": PASSWORD,
                                                         "csrf_token": token})
        if response.status_code != 302:
            raise Unexpected(f"login of {self.email}: {response.status_code}")
        self.csrf = _hidden(self.retrying("GET", "/referrals/new").text, "csrf_token")

    def send_referral(self) -> int:
        """Start a GBV referral and take it to the point where it is sent; returns its id."""
        self.requests = 0
        referral_id = self._start()
        for _step in range(MAX_STEPS):
            page = self.retrying("GET", f"/referrals/{referral_id}/step")
            if page.status_code == 302:  # no step waiting: sent
                with self.tally.lock:
                    self.tally.sent[referral_id] = self.requests
                return referral_id
            self.request("POST", f"/referrals/{referral_id}/step", data=self._answers(page.text))
            # Whatever became of that request (even none: its server was killed), the next
            # GET shows where the referral stands now.
        raise Unexpected(f"referral {referral_id} never got sent")

    def _start(self) -> int:
        # A start that got no answer may or may not have happened: if it did, that referral
        # waits at its first step (whole, and harmless), and this one is another.
        response = self.retrying("POST", "/referrals/new", data={"pathway": "gbv_referral", "csrf_token": self.csrf})
        return int(re.search(r"/referrals/(\d+)/step", response.headers["Location"]).group(1))

    def _answers(self, page: str) -> dict:
        if 'name="chosen_services"' in page:
            offered = re.findall(r'name="chosen_services" type="checkbox" value="(\d+)"', page) or re.findall(
                r'type="checkbox" value="(\d+)"[^>]*name="chosen_services"', page)
            if len(offered) < 2:
                raise Unexpected("fewer than two services offered")
            answers = {"chosen_services": offered[:2]}
        else:
            step = next((name for name in STEPS if f'name="{name}"' in page), None)
            if step is None:
                raise Unexpected(f"a step the caseworker does not know:\n{page[:3000]}")
            answers = STEPS[step]
        return {"task": _hidden(page, "task"), "revision": _hidden(page, "revision"), "csrf_token": self.csrf,
                "action": "next", "formkit_shown": ",".join(answers), **answers}


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', page)
    if match is None:
        raise Unexpected(f"no field {name} on the page:\n{page[:3000]}")
    return match.group(1)


def send_referrals(base_url: str, emails: list[str], count: int, tally: Tally, *,
                   tolerate_503: bool = False, during=None) -> None:
    """``count`` referrals started and sent by ``len(emails)`` caseworkers at once, each in a
    thread of its own; ``during(tally)``, if given, runs in one more thread meanwhile."""
    shares = [count // len(emails) + (1 if n < count % len(emails) else 0) for n in range(len(emails))]

    def work(email: str, share: int) -> None:
        caseworker = Caseworker(base_url, email, tally, tolerate_503=tolerate_503)
        try:
            caseworker.login()
            for _ in range(share):
                caseworker.send_referral()
        finally:
            caseworker.close()

    with ThreadPoolExecutor(max_workers=len(emails) + 1) as pool:
        futures = [pool.submit(work, email, share) for email, share in zip(emails, shares, strict=True)]
        if during is not None:
            futures.append(pool.submit(during, tally))
        deadline = time.monotonic() + SEND_TIMEOUT
        for future in futures:
            future.result(timeout=max(deadline - time.monotonic(), 1))
