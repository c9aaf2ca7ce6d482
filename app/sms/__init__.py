"""Text messages to providers: the outbox (the row is the message), gateways, the worker."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Queue the new-referral SMS whenever a referral target is created."""
    from app.referrals.pathway_tasks import target_created
    from app.sms.services import queue_new_referral

    target_created.connect(queue_new_referral, weak=False)
