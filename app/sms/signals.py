"""What the SMS side tells the rest of the app (signals upward: ``sms`` never imports ``referrals``).

``message_undeliverable``: a message to a referral target's service (kind ``referral`` or
``reminder``, with a target) will not arrive: it failed for good (a permanent error, the worker
gave up, or Twilio's status callback said failed or undelivered), or it was suppressed because
the number opted out. Never for ``unknown``: that message may have arrived, and reconciliation
decides. Sent with the ``OutboxMessage`` as sender and ``reason`` (the error code: ``21211``,
``30003``, ``max_attempts``, ``opted_out``, ...).

``announce_undeliverable`` is the one way to send it. The message's new status is committed
before; each receiver then runs inside an open ``db.session`` transaction, which is committed
when it returns. A receiver that raises is rolled back alone and logged (the outbox id only):
it cannot undo the status change, nor keep the other receivers from running.
"""

from __future__ import annotations

import logging

from blinker import Namespace

from app.extensions import db

log = logging.getLogger(__name__)

signals = Namespace()
#: A message to a referral target's service (kind ``referral`` or ``reminder``) will not arrive:
#: failed for good, or suppressed (the number opted out). Sent with the ``OutboxMessage`` as sender
#: and ``reason`` (the error code), inside the session's transaction, which the sender commits.
message_undeliverable = signals.signal("sms-message-undeliverable")

#: The kinds of message whose loss matters to a referral (the provider never heard of it).
UNDELIVERABLE_KINDS = frozenset({"referral", "reminder"})


def announce_undeliverable(message, reason: str | None) -> int:
    """Send ``message_undeliverable`` for ``message`` (already committed as failed or suppressed)
    if it is a referral or reminder with a target; returns how many receivers ran without error."""
    if message is None or message.kind not in UNDELIVERABLE_KINDS or message.target_id is None:
        return 0
    outbox_id = message.id
    succeeded = 0
    for receiver in list(message_undeliverable.receivers_for(message)):
        try:
            receiver(message, reason=reason)
            db.session.commit()
        except Exception:  # noqa: BLE001 - one receiver's failure must not cost the others
            db.session.rollback()
            log.exception("sms outbox %s: a message_undeliverable receiver failed", outbox_id)
        else:
            succeeded += 1
    return succeeded
