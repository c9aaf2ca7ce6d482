"""A small Twilio-shaped HTTP server for tests: the real SDK talks to it over 127.0.0.1.

Implements ``POST`` and ``GET /2010-04-01/Accounts/{sid}/Messages.json`` (create; list with
``To``, ``DateSent>`` / ``DateSent>=``, ``PageSize``/``Page``, newest first), HTTP Basic auth,
Twilio-style JSON errors, and a FIFO of planned misbehaviour, each consumed by the next
authenticated Messages request (a create or a list)::

    server.fail_next(status=400, code=21211)   # a Twilio error response
    server.fail_next(status=503, record=True)  # accept (record) the message, then answer 503
    server.delay_next(2.0)                     # accept (record) the message, answer late
    server.drop_next()                         # accept (record) the message, close without answering

and, for fault tests::

    server.after_record = hook                 # hook(message) runs after a message is recorded,
                                               # before the answer (return False: never answer)
    server.refuse_connections()                # stop listening: connections are refused ...
    server.accept_connections()                # ... until it listens again, on the same port
    server.set_status(sid, "delivered")        # what the list reports for a message
    server.clock = lambda: some_datetime       # Twilio's clock, when a test moves the worker's

Simplification: the list filter ``DateSent>`` compares against ``date_created`` (the fake
"sends" every message at once).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

API = "/2010-04-01"

ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region",
    21602: "Message body is required",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required",
    21604: "A 'To' phone number is required",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
}


@dataclass
class Planned:
    kind: str  # "fail", "delay" or "drop"
    status: int = 0
    code: int | None = None
    message: str | None = None
    seconds: float = 0.0
    record: bool = False  # "fail": record the message first (accepted, then a failure answered)


@dataclass
class ReceivedMessage:
    sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None
    date_created: datetime
    form: dict[str, str] = field(default_factory=dict)
    status: str = "queued"

    @property
    def outbox_id(self) -> int | None:
        """The outbox id in the status callback URL (``...?outbox=<id>``)."""
        query = parse_qs(urlsplit(self.status_callback or "").query)
        return int(query["outbox"][0]) if "outbox" in query else None


class FakeTwilio:
    def __init__(self, account_sid: str | None = None, auth_token: str = "fake-auth-token",
                 from_number: str = "+15005550006"):
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token
        self.from_number = from_number
        self.port = 0  # set by start()
        self.max_page_size = 50  # cap on PageSize, to exercise the SDK's paging
        self._lock = threading.Lock()
        self._planned: list[Planned] = []
        self._messages: list[ReceivedMessage] = []
        self._requests: list[tuple[str, str]] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: Runs (in the server's thread) after a message is recorded, before it is answered;
        #: returning False means the answer is never written.
        self.after_record: Callable[[ReceivedMessage], bool | None] | None = None
        #: Twilio's clock (``date_created``): a test that moves the worker's ``now`` moves this too.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", self.port), _Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-twilio", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (later connections are refused) and release any delayed handler."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def refuse_connections(self) -> None:
        """Twilio unreachable: nothing listens on the port (what was received is kept)."""
        self.stop()

    def accept_connections(self) -> None:
        """Twilio back, on the same port."""
        if self._httpd is None:
            self.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gateway_config(self, **overrides: Any) -> dict[str, Any]:
        """A TwilioGateway config pointing at this server."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_FROM_NUMBER": self.from_number,
            "TWILIO_API_BASE_URL": self.base_url,
            "PUBLIC_BASE_URL": "https://pathways.example.org",
            "SMS_TIMEOUT_SECONDS": 0.5,
            **overrides,
        }

    # -- scripting -----------------------------------------------------------------------------

    def fail_next(self, status: int, code: int | None = None, message: str | None = None, *,
                  record: bool = False) -> None:
        with self._lock:
            self._planned.append(Planned("fail", status=status, code=code, message=message, record=record))

    def set_status(self, sid: str, status: str) -> None:
        with self._lock:
            for message in self._messages:
                if message.sid == sid:
                    message.status = status

    def delay_next(self, seconds: float) -> None:
        with self._lock:
            self._planned.append(Planned("delay", seconds=seconds))

    def drop_next(self) -> None:
        with self._lock:
            self._planned.append(Planned("drop"))

    # -- what was received ---------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path with query) of every request received, authenticated or not."""
        with self._lock:
            return list(self._requests)

    # -- internals used by the handler ---------------------------------------------------------

    def _note_request(self, method: str, path: str) -> None:
        with self._lock:
            self._requests.append((method, path))

    def _take_planned(self) -> Planned | None:
        with self._lock:
            return self._planned.pop(0) if self._planned else None

    def _record(self, form: dict[str, str]) -> ReceivedMessage:
        message = ReceivedMessage(
            sid="SM" + secrets.token_hex(16),
            to=form["To"],
            body=form["Body"],
            from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            status_callback=form.get("StatusCallback"),
            date_created=self.clock().replace(microsecond=0),
            form=form,
        )
        with self._lock:
            self._messages.append(message)
        return message

    def _resource(self, m: ReceivedMessage) -> dict[str, Any]:
        date = format_datetime(m.date_created)
        uri = f"{API}/Accounts/{self.account_sid}/Messages/{m.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": m.body,
            "date_created": date,
            "date_sent": None,
            "date_updated": date,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": m.from_,
            "messaging_service_sid": m.messaging_service_sid,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": m.sid,
            "status": m.status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": m.to,
            "uri": uri,
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTwilio

    def handle_error(self, request, client_address) -> None:  # a client that gave up: not our problem
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args) -> None:  # quiet
        pass

    @property
    def fake(self) -> FakeTwilio:
        return self.server.fake

    def do_POST(self) -> None:
        self._messages("POST")

    def do_GET(self) -> None:
        self._messages("GET")

    def _messages(self, method: str) -> None:
        url = urlsplit(self.path)
        self.fake._note_request(method, self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()} if length else {}
        parts = url.path.split("/")  # "", "2010-04-01", "Accounts", sid, "Messages.json"
        if len(parts) != 5 or parts[1] != "2010-04-01" or parts[2] != "Accounts" or parts[4] != "Messages.json":
            return self._error(404, 20404)
        if not self._authorized() or parts[3] != self.fake.account_sid:
            return self._error(401, 20003)

        planned = self.fake._take_planned()
        if planned and planned.kind == "fail" and not (planned.record and method == "POST"):
            return self._error(planned.status, planned.code, planned.message)
        if method == "GET":
            return self._list(parse_qs(url.query))

        for key, code in (("To", 21604), ("Body", 21602)):
            if not form.get(key):
                return self._error(400, code)
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self._error(400, 21603)
        message = self.fake._record(form)
        hook = self.fake.after_record
        if hook is not None and hook(message) is False:
            self.close_connection = True
            return
        if planned and planned.kind == "fail":  # recorded, and yet a failure answered
            return self._error(planned.status, planned.code, planned.message)
        if planned and planned.kind == "drop":
            self.close_connection = True
            return  # accepted, but the client never hears of it
        if planned and planned.kind == "delay":
            if self.fake._stopping.wait(planned.seconds):
                return
        self._json(201, self.fake._resource(message))

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.fake.account_sid and password == self.fake.auth_token

    def _list(self, query: dict[str, list[str]]) -> None:
        def one(key: str) -> str | None:
            return query[key][-1] if key in query else None

        messages = list(reversed(self.fake.messages))  # newest first, like Twilio
        if one("To"):
            messages = [m for m in messages if m.to == one("To")]
        date_sent = one("DateSent>") or one("DateSent>=")
        if date_sent:
            try:
                since = _parse_date(date_sent)
            except ValueError:
                return self._error(400, 20001, "Invalid DateSent")
            messages = [m for m in messages if m.date_created >= since]
        page_size = min(int(one("PageSize") or 50), self.fake.max_page_size)
        page = int(one("Page") or 0)
        chunk = messages[page * page_size:(page + 1) * page_size]
        base = f"{API}/Accounts/{self.fake.account_sid}/Messages.json"
        filters = {k: v[-1] for k, v in query.items() if k not in ("PageSize", "Page", "PageToken")}

        def page_uri(n: int) -> str:
            return base + "?" + urlencode({**filters, "PageSize": page_size, "Page": n})

        has_next = (page + 1) * page_size < len(messages)
        self._json(200, {
            "messages": [self.fake._resource(m) for m in chunk],
            "end": page * page_size + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": page * page_size,
            "uri": page_uri(page),
        })

    def _error(self, status: int, code: int | None, message: str | None = None) -> None:
        code = code or status
        self._json(status, {
            "code": code,
            "message": message or ERROR_MESSAGES.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        })

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client timed out and went away
            self.close_connection = True


def _parse_date(value: str) -> datetime:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"bad date {value!r}")


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio().start()
    try:
        yield server
    finally:
        server.stop()
