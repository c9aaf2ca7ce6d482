"""Shared steps for referral tests: a published demo pathway and HTTP walk-throughs."""

from __future__ import annotations

import re

from app.extensions import db
from app.workflow import services as workflow

ADULT = {
    "demo_consent": {"consent_given": "yes", "consent_by": "person"},
    "demo_person": {"case_code": "RPC-7", "full_name": "Maria Example", "age": "30",
                    "sex": "female", "location": "capital"},
    "demo_needs": {"services": ["health"], "urgency": "normal", "reason": "Needs a doctor."},
    "demo_review": {"confirm": "yes"},
}


def publish_demo(app) -> None:
    with app.app_context():
        workflow.publish_directory()
        db.session.commit()


def start(client) -> int:
    """Start a demo referral as the logged-in caseworker; returns its id."""
    response = client.post_form("/referrals/new", {"pathway": "demo_referral"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(re.search(r"/referrals/(\d+)/step", response.headers["Location"]).group(1))


def step_page(client, referral_id: int):
    return client.get(f"/referrals/{referral_id}/step")


def hidden(page_html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page_html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', page_html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def submit(client, referral_id: int, answers: dict, action: str = "next", page_html: str | None = None):
    """Post the current step with ``answers`` (as a browser would, with every field shown)."""
    page_html = page_html or step_page(client, referral_id).get_data(as_text=True)
    data = {"task": hidden(page_html, "task"), "revision": hidden(page_html, "revision"),
            "csrf_token": hidden(page_html, "csrf_token"), "action": action,
            "formkit_shown": hidden(page_html, "formkit_shown")}
    data.update(answers)
    if answers:
        data["formkit_shown"] = ",".join(k for k in answers)
    return client.post(f"/referrals/{referral_id}/step", data=data)
