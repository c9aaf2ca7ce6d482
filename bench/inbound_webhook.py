"""Figure 4: Twilio's inbound SMS webhook, signed, each request a provider's ACCEPT applied.

Each request is what Twilio posts to ``/sms/inbound`` when a provider replies: ``ACCEPT <code>``
from the service's registered phone, for a different pending target each time, with a valid
``X-Twilio-Signature`` (computed with the SDK's ``RequestValidator``). The app checks the
signature, stores the message once per MessageSid, parses it, accepts the target (a conditional
update), tells the caseworker, pokes the workflow, refreshes the referral and queues the
confirmation SMS — one transaction. Baseline: the bare app's ``POST /insert`` with the same
parameters, on the same database, by the same clients.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from bench.common import CLIENTS, Row
from bench.database import TWILIO_AUTH_TOKEN, BenchDatabase
from bench.harness import Scale, main
from bench.servers import Stack, drive, status

FIGURE = "4 Inbound SMS webhook"
REQUESTS = 200


def _pending(db: BenchDatabase, count: int) -> list[tuple[str, str]]:
    """(target code, the service's SMS phone) of ``count`` pending targets, outside the due ones."""
    from app.extensions import db as sa

    due = set(db.due.referral_ids if db.due else [])
    with db.app.app_context():
        rows = sa.session.execute(text(
            "SELECT t.code, s.sms_phone, t.referral_id FROM referral_targets t JOIN services s ON s.id = t.service_id "
            "WHERE t.status = 'pending' AND s.sms_phone IS NOT NULL ORDER BY t.id DESC LIMIT :n"),
            {"n": count + len(due) * 2}).all()
        sa.session.remove()
    found = [(code, phone) for code, phone, referral in rows if referral not in due][:count]
    if len(found) < count:
        raise RuntimeError(f"only {len(found)} pending targets with an SMS phone")
    return found


def _applied(db: BenchDatabase, codes: list[str]) -> int:
    from app.extensions import db as sa
    from app.referrals.models import ReferralTarget, TargetStatus

    with db.app.app_context():
        count = sa.session.scalar(select(func.count()).select_from(ReferralTarget).where(
            ReferralTarget.code.in_(codes), ReferralTarget.status == TargetStatus.accepted,
            ReferralTarget.response_channel == "sms"))
        sa.session.remove()
    return count


def run(db: BenchDatabase, stack: Stack, scale: Scale) -> list[Row]:
    """Signed ACCEPTs against the bare insert (see the module doc)."""
    db.ensure_waiting(max(db.waiting, scale.small), due=scale.due)
    count, warm = scale.n(REQUESTS), 2 * CLIENTS
    targets = _pending(db, warm + count)
    app, bare = stack.app, stack.bare.url
    validator = RequestValidator(TWILIO_AUTH_TOKEN)
    url = app.public_base_url + "/sms/inbound"
    requests = []
    for code, phone in targets:  # signed up front: Twilio's signing is not the app's cost
        params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": phone,
                  "To": "+15005550006", "Body": f"ACCEPT {code}", "NumMedia": "0"}
        requests.append((params, validator.compute_signature(url, params)))

    def inbound(session, n: int, offset: int):
        params, signature = requests[offset + n]
        return session.post(app.url + "/sms/inbound", data=params, headers={"X-Twilio-Signature": signature})

    def insert(session, n: int):
        return session.post(bare + "/insert", data=requests[n % len(requests)][0])

    drive(lambda s, n: inbound(s, n, 0), warm, ok=status(200))
    drive(insert, warm, ok=status(201))
    base = drive(insert, max(count, 300), ok=status(201), server=stack.bare)
    measured = drive(lambda s, n: inbound(s, n, warm), count, ok=status(200), server=app)
    applied = _applied(db, [code for code, _phone in targets[warm:]])
    return [Row(FIGURE, db.label, f"ACCEPT by SMS, signed, applied ({db.waiting:,} referrals in the database), "
                                  f"{CLIENTS} clients",
                measured.summary(), f"bare insert: {base.summary()}", measured.ratios(base),
                [f"{applied} of {count} answers applied to their targets"
                 + ("" if applied == count else " — some were not")])]


if __name__ == "__main__":
    raise SystemExit(main([run]))
