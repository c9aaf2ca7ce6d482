"""Twilio, through the official SDK (``twilio.rest.Client``).

``send`` maps every failure onto the three gateway errors the worker understands:

* ``TransientError``: not sent, retry later: HTTP 429, or the connection was never made
  (refused, DNS failure, connect timeout, TLS handshake): the request never left this machine.
* ``PermanentError(code)``: Twilio refused this message for good: any other 4xx, with Twilio's
  error code (21211 invalid number, 21610 opted out, 21612, 21614 not a mobile, 21408 region
  not enabled, 20003 bad credentials, ...).
* ``UnknownOutcome``: the request may have been accepted: 5xx, read timeout, connection dropped
  after sending, unreadable 2xx. Never resent blindly: the worker's reconciliation asks
  ``find_sent`` whether Twilio has it.

``find_sent`` lists the messages to the number, newest first, back to the time in question, and
matches the body. It does not use Twilio's ``DateSent`` filter: a message Twilio accepted but
has not sent yet (queued behind others, or scheduled) has no ``date_sent``, would be missed, and
would then be sent twice; ``date_created`` is set the moment Twilio takes it.

``TWILIO_API_BASE_URL`` (tests, local fakes) replaces the scheme and host of every URL the SDK
builds (``https://api.twilio.com/2010-04-01/...`` -> ``http://127.0.0.1:PORT/2010-04-01/...``);
it is done in the SDK's pluggable HTTP client, so paging URLs are rewritten as well.

Nothing here logs, or puts into an exception's text, the message body or a phone number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError

from app.sms.gateways import PermanentError, SendResult, TransientError, UnknownOutcome

log = logging.getLogger(__name__)

# Twilio error codes that are about the recipient/sender, never worth retrying. Any other 4xx
# is permanent too; this set is for documentation and for callers that want to tell them apart.
RECIPIENT_ERROR_CODES = frozenset({21211, 21408, 21610, 21612, 21614})

DEFAULT_TIMEOUT_SECONDS = 10.0
#: How many of a number's messages ``find_sent`` reads (newest first) before it gives up.
FIND_SENT_SCAN_LIMIT = 500

# urllib3 failures that happen while connecting, i.e. before a byte of the request was sent
# (NewConnectionError: refused, DNS, is a ConnectTimeoutError).
_BEFORE_SENDING = (ConnectTimeoutError, Urllib3SSLError, Urllib3ProxyError)


class _HttpClient(TwilioHttpClient):
    """The SDK's requests-based client, with a base-URL override and quiet, PII-free logging."""

    def __init__(self, *, timeout: float, base_url: str | None = None):
        super().__init__(pool_connections=True, timeout=timeout, logger=log)
        self._base = _parse_base_url(base_url) if base_url else None

    def rewrite(self, url: str) -> str:
        if self._base is None:
            return url
        scheme, netloc, prefix = self._base
        parts = urlsplit(url)
        return urlunsplit((scheme, netloc, prefix + parts.path, parts.query, parts.fragment))

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        return super().request(method, self.rewrite(url), params=params, data=data, headers=headers, auth=auth,
                               timeout=timeout, allow_redirects=allow_redirects)

    # The SDK logs query parameters at INFO (a message list's ``To`` is one): log the path only.
    def log_request(self, kwargs: dict[str, Any]) -> None:
        log.debug("twilio request %s %s", kwargs["method"], urlsplit(kwargs["url"]).path)

    def log_response(self, status_code: int, response: Any) -> None:
        log.debug("twilio response %s", status_code)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def _parse_base_url(base_url: str) -> tuple[str, str, str]:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("TWILIO_API_BASE_URL must look like http(s)://host[:port][/prefix]")
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


class TwilioGateway:
    """``send`` one SMS through Twilio; ``find_sent`` for reconciling unknown outcomes."""

    def __init__(self, config: Mapping):
        missing = [key for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL") if not config.get(key)]
        if not (config.get("TWILIO_FROM_NUMBER") or config.get("TWILIO_MESSAGING_SERVICE_SID")):
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if missing:
            raise ValueError("Twilio SMS is not configured: missing " + ", ".join(missing))
        timeout = float(config.get("SMS_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS)
        if timeout <= 0:
            raise ValueError("SMS_TIMEOUT_SECONDS must be positive")

        # With a messaging service, Twilio picks the sender from the service's pool.
        self.messaging_service_sid: str | None = config.get("TWILIO_MESSAGING_SERVICE_SID") or None
        self.from_number: str | None = None if self.messaging_service_sid else config["TWILIO_FROM_NUMBER"]
        self.public_base_url: str = str(config["PUBLIC_BASE_URL"]).rstrip("/")
        self.timeout = timeout
        self.http_client = _HttpClient(timeout=timeout, base_url=config.get("TWILIO_API_BASE_URL") or None)
        account_sid = config["TWILIO_ACCOUNT_SID"]
        self.client = Client(
            username=account_sid,
            password=config["TWILIO_AUTH_TOKEN"],
            account_sid=account_sid,
            http_client=self.http_client,
            # Not os.environ: a stray TWILIO_EDGE/TWILIO_REGION there would change the host.
            # (Non-empty on purpose: the SDK falls back to os.environ for an empty mapping.)
            environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
        )

    def status_callback_url(self, outbox_id: int) -> str:
        return f"{self.public_base_url}/sms/status?outbox={quote(str(outbox_id))}"

    def send(self, to: str, body: str, outbox_id: int) -> SendResult:
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number}
        )
        try:
            message = self.client.messages.create(
                to=to, body=body, status_callback=self.status_callback_url(outbox_id), **sender
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            error = _rest_error(exc)
        except requests.RequestException as exc:
            error = _transport_error(exc)
        except (TwilioException, ValueError) as exc:  # e.g. a 2xx whose body is not the JSON we expect
            error = UnknownOutcome(f"unreadable Twilio response ({type(exc).__name__})", code="bad_response")
        else:
            if not message.sid:
                raise UnknownOutcome("Twilio response without a message sid", code="bad_response")
            log.info("sms outbox %s: twilio accepted %s (%s)", outbox_id, message.sid, message.status)
            return SendResult(provider_id=message.sid, status=str(message.status or "queued"))
        log.warning("sms outbox %s: twilio %s %s", outbox_id, type(error).__name__, error)
        raise error  # raised outside the except blocks: the SDK's text may quote the number

    def recent_messages(self, to: str, since: datetime, *, limit: int = 100) -> list[tuple[str, str, datetime | None]]:
        """Messages to ``to`` sent since ``since`` (naive = UTC), newest first: (sid, status, date_created).

        Errors: a 4xx (not 429) raises ``PermanentError``; anything else ``TransientError`` (it
        is a read, so asking again is always safe).
        """
        # The SDK formats the datetime with strftime and no conversion, hence UTC here.
        messages = _read(lambda: list(self.client.messages.list(to=to, date_sent_after=_utc(since), limit=limit)))
        return [(m.sid, str(m.status), m.date_created) for m in messages]

    def find_sent(self, to: str, body: str, since: datetime, *,
                  exclude: Collection[str] = ()) -> SendResult | None:
        """The newest message to ``to`` created since ``since`` with this body and a sid not in
        ``exclude`` (other outbox rows' messages), as ``SendResult(sid, Twilio's status)``.

        None only when every message back to ``since`` was read; errors as ``recent_messages``,
        and ``TransientError`` when more than FIND_SENT_SCAN_LIMIT messages would have to be read.
        """
        since_utc, excluded, wanted = _utc(since), frozenset(exclude), _squash(body)

        def scan() -> SendResult | None:
            for scanned, message in enumerate(self.client.messages.stream(to=to, page_size=50)):
                if message.date_created is not None and message.date_created < since_utc:
                    return None  # newest first: everything after this is older still
                if scanned >= FIND_SENT_SCAN_LIMIT:
                    raise TransientError("too many messages to read back", code="scan_limit")
                if (message.sid not in excluded and str(message.direction or "").startswith("outbound")
                        and _same_body(message.body, wanted)):
                    return SendResult(provider_id=message.sid, status=str(message.status or "queued"))
            return None

        return _read(scan)

    def close(self) -> None:
        self.http_client.close()


def _read(request: Callable[[], Any]) -> Any:
    """Run a read (a message list) and map its failures: a 4xx (not 429) is ``PermanentError``,
    anything else ``TransientError``. Raised outside the except blocks: the SDK's text may quote
    the number."""
    try:
        return request()
    except (TwilioRestException, TwilioServiceException) as exc:
        error = _rest_error(exc)
    except TwilioException as exc:
        # A page that is not a 200 comes as TwilioException("Unable to fetch page", response).
        response = exc.args[1] if len(exc.args) > 1 else None
        status = getattr(response, "status_code", 0)
        code = _error_code(getattr(response, "text", "")) or status
        error = _rest_error(TwilioRestException(status, "", code=code))
    except (requests.RequestException, ValueError) as exc:
        error = TransientError(f"Twilio message list failed ({type(exc).__name__})", code="list_failed")
    if not isinstance(error, PermanentError | TransientError):
        error = TransientError(str(error), code=error.code)
    raise error


def _utc(moment: datetime) -> datetime:
    """Aware UTC (a naive datetime is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _squash(text: str | None) -> str:
    return " ".join((text or "").split())


def _same_body(theirs: str | None, wanted: str) -> bool:
    """Twilio's copy of the body is ours, give or take whitespace. Nothing looser: taking another
    message for ours would lose ours, while missing ours only sends it twice."""
    return _squash(theirs) == wanted


def _rest_error(exc: TwilioRestException | TwilioServiceException) -> Exception:
    """Twilio answered with an error status."""
    status = int(exc.status or 0)
    code = str(exc.code or status)
    text = f"Twilio HTTP {status}, error {code}"
    if status == 429:
        return TransientError(text + " (rate limited)", code=code)
    if 400 <= status < 500:
        return PermanentError(code, text)
    return UnknownOutcome(text + " (may have been accepted)", code=code)


def _error_code(text: str) -> int | None:
    try:
        code = json.loads(text).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _transport_error(exc: requests.RequestException) -> Exception:
    """No usable HTTP answer. Transient only when the request provably never left."""
    name = type(exc).__name__
    reason = exc.args[0] if exc.args else None
    if isinstance(exc, requests.ConnectionError) and isinstance(reason, MaxRetryError):
        # requests wraps connect-phase failures in MaxRetryError (retries are 0); errors after
        # sending (connection reset/aborted) come as a bare ProtocolError, read timeouts as ReadTimeout.
        if isinstance(reason.reason, _BEFORE_SENDING):
            return TransientError(f"could not reach Twilio ({name})", code="connect")
    if isinstance(exc, requests.ReadTimeout):
        return UnknownOutcome("no answer from Twilio in time (read timeout)", code="timeout")
    return UnknownOutcome(f"connection to Twilio failed after sending ({name})", code="connection")
