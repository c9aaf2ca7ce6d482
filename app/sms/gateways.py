"""Where messages go: the console (the outbox row is the message) or Twilio.

A gateway's ``send`` returns a ``SendResult`` or raises one of three errors, and the worker
treats each differently: ``TransientError`` is retried with backoff, ``PermanentError`` marks
the message failed for good, ``UnknownOutcome`` (it may have been sent) is never resent blindly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    status: str = "sent"  # "sent" or "delivered"


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


class ConsoleGateway:
    """Development: nothing leaves the machine; the outbox row is the message (see /dev/sms)."""

    def send(self, to: str, body: str, outbox_id: int) -> SendResult:
        return SendResult(provider_id=f"console-{outbox_id}", status="sent")


def get_gateway(app) -> Gateway:
    """The gateway SMS_BACKEND names: ``console`` (default) or ``twilio``."""
    backend = app.config.get("SMS_BACKEND", "console")
    if backend == "console":
        return ConsoleGateway()
    if backend == "twilio":
        from app.sms.twilio_gateway import TwilioGateway

        return TwilioGateway(app.config)
    raise ValueError(f"unknown SMS_BACKEND {backend!r}: use console or twilio")
