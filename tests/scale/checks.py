"""What the load and fault tests check in the database after the run.

**Half-written**, from the models: a step's submission (``form_submissions``), its workflow
task row marked completed, the new workflow state and its ``step.completed`` audit event are
written in one transaction; so are the targets a sent referral creates, their
``target.created`` events and their outbox rows. A referral is whole when

- it has its workflow instance, a ``referral.started`` event, and exactly one ready task row
  while it is in progress;
- every submission has its completed task row (same task id) and vice versa, and there are as
  many ``step.completed`` events as submissions;
- it has targets if and only if its review step ("send") was submitted, and then it waits for
  the providers (or is completed: they answered); every target has its ``target.created``
  event and exactly one new-referral SMS in the outbox.

Anything else is a referral half-written (or an SMS queued for nothing)."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.referrals.models import FormSubmission, Referral, ReferralStatus, ReferralTarget
from app.sms.models import OutboxMessage, OutboxStatus
from app.workflow.models import WorkflowTask

#: Statuses of a message still on its way through the worker.
IN_FLIGHT = (OutboxStatus.queued, OutboxStatus.sending, OutboxStatus.unknown)


def half_written(app) -> list[str]:
    """Every way in which a referral is not whole (see the module doc); empty when all are."""
    problems: list[str] = []
    with app.app_context():
        referrals = db.session.execute(select(Referral.id, Referral.instance_id, Referral.status)).all()
        submissions = _group(select(FormSubmission.referral_id, FormSubmission.task_uuid, FormSubmission.step))
        tasks = _group(select(Referral.id, WorkflowTask.task_uuid, WorkflowTask.state)
                       .join(WorkflowTask, WorkflowTask.instance_id == Referral.instance_id))
        events = _group(select(AuditEvent.referral_id, AuditEvent.action, AuditEvent.detail)
                        .where(AuditEvent.referral_id.is_not(None)))
        targets = _group(select(ReferralTarget.referral_id, ReferralTarget.id, ReferralTarget.code))
        outbox = Counter(db.session.scalars(select(OutboxMessage.target_id).where(
            OutboxMessage.idempotency_key.like("target:%:new"))))
        for referral_id, instance_id, status in referrals:
            name = f"referral {referral_id}"
            mine = events.get(referral_id, [])
            actions = Counter(action for action, _detail in mine)
            if instance_id is None or actions["referral.started"] != 1:
                problems.append(f"{name}: no instance or no single referral.started event")
            done = {uuid for uuid, state in tasks.get(referral_id, []) if state == "completed"}
            ready = [uuid for uuid, state in tasks.get(referral_id, []) if state == "ready"]
            answered = {uuid for uuid, _step in submissions.get(referral_id, [])}
            if done != answered:
                problems.append(f"{name}: completed tasks {sorted(done)} != submitted steps {sorted(answered)}")
            if actions["step.completed"] != len(submissions.get(referral_id, [])):
                problems.append(f"{name}: {actions['step.completed']} step.completed events for "
                                f"{len(submissions.get(referral_id, []))} submissions")
            if status == ReferralStatus.in_progress and len(ready) != 1:
                problems.append(f"{name}: in progress with {len(ready)} ready tasks")
            sent = any(step == "review" for _uuid, step in submissions.get(referral_id, []))
            own = targets.get(referral_id, [])
            if sent != bool(own):
                problems.append(f"{name}: review submitted {sent}, but {len(own)} targets")
            if own and status not in (ReferralStatus.waiting, ReferralStatus.completed):
                problems.append(f"{name}: sent but {status.value}")
            created = Counter(detail.get("target") for action, detail in mine if action == "target.created")
            for target_id, code in own:
                if created[code] != 1:
                    problems.append(f"{name}: target {code} has {created[code]} target.created events")
                if outbox[target_id] != 1:
                    problems.append(f"{name}: target {code} has {outbox[target_id]} new-referral SMS queued")
        known = {target_id for rows in targets.values() for target_id, _code in rows}
        orphans = set(outbox) - known
        if orphans:
            problems.append(f"new-referral SMS queued for no target: {sorted(orphans, key=str)}")
        db.session.remove()
    return problems


def _group(query) -> dict:
    grouped: dict = defaultdict(list)
    for key, *rest in db.session.execute(query):
        grouped[key].append(tuple(rest))
    return grouped


def sent_referrals(app) -> dict[int, list[tuple[int, str, str]]]:
    """{referral id: [(target id, code, the service's phone)]} of every referral sent."""
    from app.directory.models import Service

    with app.app_context():
        rows = db.session.execute(select(ReferralTarget.referral_id, ReferralTarget.id, ReferralTarget.code,
                                         Service.sms_phone).join(Service, Service.id == ReferralTarget.service_id)
                                  .order_by(ReferralTarget.id)).all()
        db.session.remove()
    found: dict = defaultdict(list)
    for referral_id, target_id, code, phone in rows:
        found[referral_id].append((target_id, code, phone))
    return dict(found)


def outbox_statuses(app) -> Counter:
    with app.app_context():
        counts = Counter(dict(db.session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()))
        db.session.remove()
    return counts


def wait_until_drained(app, expected: int, timeout: float) -> Counter:
    """Until ``expected`` messages are in the outbox and none is still on its way (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = outbox_statuses(app)
        if sum(counts.values()) >= expected and not any(counts[s] for s in IN_FLIGHT):
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"the outbox did not drain in {timeout} s: {dict(counts)}")
        time.sleep(0.5)


def sms_per_target(app, fake) -> tuple[Counter, Counter]:
    """How many times the fake Twilio took each target's new-referral SMS: by outbox row
    (through the status callback's ``outbox`` id) and by the target's code in the text."""
    with app.app_context():
        target_of = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.target_id).where(
            OutboxMessage.idempotency_key.like("target:%:new"))).all())
        codes = dict(db.session.execute(select(ReferralTarget.id, ReferralTarget.code)).all())
        db.session.remove()
    received = fake.messages
    by_outbox = Counter(target_of.get(m.outbox_id) for m in received)
    target_of_code = {code: target_id for target_id, code in codes.items()}
    by_code = Counter()
    for message in received:
        quoted = re.search(r"\bACCEPT (\w+)", message.body)  # "Reply ACCEPT <code> or ...", every language
        by_code[target_of_code.get(quoted.group(1)) if quoted else None] += 1
    return by_outbox, by_code


def log_problems(texts: dict[str, str]) -> list[str]:
    """Tracebacks, SQLite's lock errors and 5xx answers in the servers' output."""
    problems = []
    for name, text in texts.items():
        for marker in ("Traceback", "database is locked", "Internal Server Error"):
            if marker in text:
                at = text.index(marker)
                problems.append(f"{name}: {marker}\n{text[max(0, at - 1500):at + 1500]}")
    return problems


def assert_each_referral_sent_once(app, fake, tally, referrals: int, timeout: float) -> dict:
    """Every referral the clients sent is there, the outbox drains, each target's SMS went out
    exactly once (counted in the outbox and at the fake Twilio server) and nothing is
    half-written. Returns :func:`sent_referrals` for further checks."""
    sent = sent_referrals(app)
    targets = [t for rows in sent.values() for t in rows]
    assert len(tally.sent) == len(sent) == referrals
    counts = wait_until_drained(app, len(targets), timeout)
    assert counts == {OutboxStatus.sent: len(targets)}, counts
    by_outbox, by_code = sms_per_target(app, fake)
    assert by_outbox == by_code == {target_id: 1 for target_id, _code, _phone in targets}
    assert half_written(app) == []
    return sent
