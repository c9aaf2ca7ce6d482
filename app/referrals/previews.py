"""What the pathways' service tasks would do, for the studio's test run: read, never write.

Each preview gets the same :class:`ServiceCall` as the real handler (with no referral behind
it) and returns a result of the same shape, so the pathway goes on as it would for real.
"""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.workflow.service_tasks import ServiceCall


def _chosen_services(call: ServiceCall) -> list:
    from app.directory.models import Service

    ids = [int(raw) for raw in call.data.get("chosen_services") or [] if str(raw).isdigit()]
    if not ids:
        return []
    return list(db.session.scalars(select(Service).where(Service.id.in_(ids)).order_by(Service.name)))


def send_referral(call: ServiceCall) -> dict:
    """The services a referral would go to (consent is recorded per referral: not checked here)."""
    services = _chosen_services(call)
    return {"sent": len(services), "blocked": 0,
            "services": [f"{s.name} — {s.organisation.name}" for s in services]}


def watch_targets(call: ServiceCall) -> dict:
    """The loop's timers as a new referral sets them: a reminder at half time, the deadline."""
    open_targets = len(_chosen_services(call))
    hours = call.data.get("response_hours")
    if not open_targets or not isinstance(hours, int):
        from app.referrals.follow_up import NO_TIMER

        return {"open": open_targets, "pending": open_targets, "follow_up": 0,
                "reminder_in": NO_TIMER, "deadline_in": NO_TIMER}
    return {"open": open_targets, "pending": open_targets, "follow_up": 0,
            "reminder_in": f"PT{hours * 30}M", "deadline_in": f"PT{hours}H"}


def nothing_due(call: ServiceCall) -> int:
    """Reminders and expiries: nothing is due at the start of a test run."""
    return 0


def start_linked_referral(call: ServiceCall) -> str:
    return f"(test run: would start a linked '{call.params.get('pathway')}' referral)"


def record_gaps(call: ServiceCall) -> list[str]:
    """The needs no service in the directory covers (not recorded)."""
    from app.directory import matching

    return list(matching.match_for_task_data(call.data, call.data.get("sector")).gaps)
