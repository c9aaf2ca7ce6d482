"""Where messages go: the console (the outbox row is the message) or Twilio.

A gateway's ``send`` returns a ``SendResult`` or raises one of three errors, and the worker
treats each differently: ``TransientError`` is retried with backoff, ``PermanentError`` marks
the message failed for good, ``UnknownOutcome`` (it may have been sent) is never resent blindly.

``find_sent`` answers the question an ``UnknownOutcome`` leaves open: did the provider take this
message after all? It returns the provider's record (``SendResult``), or None when the provider
definitely has no such message (then sending it is safe), and raises when it cannot tell (the
worker asks again later).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    #: "sent" or "delivered"; from ``find_sent`` the provider's own status ("queued", "failed", ...).
    status: str = "sent"


class GatewayError(Exception):
    """Base of the gateway errors. The text must never contain the body or the number."""

    def __init__(self, message: str = "", code: str | None = None):
        super().__init__(message)
        self.code = code


class TransientError(GatewayError):
    """Not sent, try again later (network down, rate limited, provider 5xx before accepting)."""


class PermanentError(GatewayError):
    """Will never be sent (invalid number, unsubscribed, ...): ``code`` says why."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message, code=code)


class UnknownOutcome(GatewayError):
    """The request may have reached the provider (e.g. a timeout after sending): do not resend."""


class Gateway(Protocol):
    def send(self, to: str, body: str, outbox_id: int) -> SendResult: ...

    def find_sent(self, to: str, body: str, since: datetime, *,
                  exclude: Collection[str] = ()) -> SendResult | None:
        """The message with this body the provider took for ``to`` since ``since`` (and whose id
        is not in ``exclude``: those belong to other outbox rows), or None if there is none."""
        ...


class ConsoleGateway:
    """Development: nothing leaves the machine; the outbox row is the message (see /dev/sms)."""

    def send(self, to: str, body: str, outbox_id: int) -> SendResult:
        return SendResult(provider_id=f"console-{outbox_id}", status="sent")

    def find_sent(self, to: str, body: str, since: datetime, *,
                  exclude: Collection[str] = ()) -> SendResult | None:
        """Nothing ever left the machine, so a message in doubt was never sent."""
        return None


def get_gateway(app) -> Gateway:
    """The gateway SMS_BACKEND names: ``console`` (default) or ``twilio``."""
    backend = app.config.get("SMS_BACKEND", "console")
    if backend == "console":
        return ConsoleGateway()
    if backend == "twilio":
        from app.sms.twilio_gateway import TwilioGateway

        return TwilioGateway(app.config)
    raise ValueError(f"unknown SMS_BACKEND {backend!r}: use console or twilio")
