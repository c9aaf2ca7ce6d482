"""Providers answer by SMS: Twilio's signed webhooks reach gunicorn through one TLS proxy hop
(``PROXY_FIX_HOPS=1``), every one delivered twice at the same moment, as Twilio does when it
retries. Each answer is applied once, each gets one confirmation SMS, and the background
workers — each taking due workflow instances under ``SKIP LOCKED`` — bring every referral to
its end exactly once."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.extensions import db
from app.referrals.models import Referral, ReferralStatus, ReferralTarget, TargetStatus
from app.sms.models import InboundMessage, InboundResult, OutboxMessage, OutboxStatus
from app.workflow.models import WorkflowInstance
from tests.scale.caseworker import Tally, send_referrals
from tests.scale.checks import half_written, log_problems, sent_referrals, wait_until_drained
from tests.scale.processes import server_environment

REFERRALS = 12
DELIVERIES = 2  # each webhook, at once
TIMEOUT = 60
#: Twilio's side of the proxy, and what the proxy adds.
PROXY_HEADERS = {"X-Forwarded-For": "54.172.60.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "pathways.test"}


def _completed(app) -> Counter:
    with app.app_context():
        counts = Counter(db.session.scalars(select(Referral.status)))
        db.session.remove()
    return counts


def test_sms_answers_through_the_proxy_are_applied_once_and_end_every_referral(app, caseworkers, fake_twilio,
                                                                               processes):
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    env = server_environment(app, fake_twilio, PROXY_FIX_HOPS="1")
    web = processes.gunicorn(env, workers=4 if postgres else 2)
    workers = [processes.worker(env) for _ in range(2 if postgres else 1)]
    send_referrals(web.url, caseworkers[:REFERRALS], REFERRALS, Tally())
    targets = [t for rows in sent_referrals(app).values() for t in rows]
    wait_until_drained(app, len(targets), TIMEOUT)  # the providers have their SMS

    validator = RequestValidator(fake_twilio.auth_token)
    answers = []
    for _target_id, code, phone in targets:
        params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": fake_twilio.account_sid,
                  "From": phone, "To": fake_twilio.from_number, "Body": f"accept {code.lower()}"}
        signature = validator.compute_signature(env["PUBLIC_BASE_URL"] + "/sms/inbound", params)
        answers.append((params, {**PROXY_HEADERS, "X-Twilio-Signature": signature}))

    def deliver(answer) -> int:
        params, headers = answer
        return requests.post(web.url + "/sms/inbound", data=params, headers=headers, timeout=TIMEOUT).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(deliver, [a for a in answers for _ in range(DELIVERIES)], timeout=TIMEOUT * 4))
    assert statuses == [200] * len(answers) * DELIVERIES

    deadline = time.monotonic() + TIMEOUT
    while _completed(app) != {ReferralStatus.completed: REFERRALS} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _completed(app) == {ReferralStatus.completed: REFERRALS}
    counts = wait_until_drained(app, len(targets) * 2, TIMEOUT)  # the confirmations are out too
    assert counts == {OutboxStatus.sent: len(targets) * 2}, counts

    with app.app_context():
        inbound = db.session.execute(select(InboundMessage.message_sid, InboundMessage.result)).all()
        answered = db.session.execute(select(ReferralTarget.status, ReferralTarget.response_channel)).all()
        replies = db.session.execute(select(OutboxMessage.id, OutboxMessage.idempotency_key).where(
            OutboxMessage.kind == "reply")).all()
        instances = db.session.scalars(select(WorkflowInstance.completed)).all()
        db.session.remove()
    assert sorted(sid for sid, _result in inbound) == sorted(params["MessageSid"] for params, _h in answers)
    assert {result for _sid, result in inbound} == {InboundResult.applied}
    assert answered == [(TargetStatus.accepted, "sms")] * len(targets)
    assert sorted(key for _id, key in replies) == sorted(f"inbound:{p['MessageSid']}:reply" for p, _h in answers)
    taken = Counter(m.outbox_id for m in fake_twilio.messages)
    assert all(taken[reply_id] == 1 for reply_id, _key in replies)
    assert len(fake_twilio.messages) == len(targets) * 2
    assert instances == [True] * REFERRALS
    assert half_written(app) == []
    for process in [*workers, web]:
        process.stop()
    assert log_problems(processes.stderr()) == []
