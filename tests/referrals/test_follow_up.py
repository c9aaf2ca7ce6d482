"""Deadlines and escalation: the pathway's boundary timers (half-time reminder, deadline), fired
by the worker's tick with the clock moved; a decline escalates at once; the caseworker's
follow-up (next matching service, send again, close) and the notifications that close the loop."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from app.auth.models import Role, User
from app.core.db import clock_moved, utcnow
from app.extensions import db
from app.inbox.services import accept_target, decline_target
from app.notifications.models import Notification
from app.referrals.models import Referral, ReferralStatus, ReferralTarget, TargetStatus
from app.sms.models import OutboxMessage
from app.workflow import services as workflow
from app.workflow.models import WorkflowInstance
from tests import factories
from tests.inbox.test_inbox import _sent_referral


def _referral(rid: int) -> Referral:
    db.session.expire_all()
    return db.session.get(Referral, rid)


def _notes(user_id: int | None = None, kind: str | None = None) -> list[Notification]:
    query = select(Notification)
    if user_id is not None:
        query = query.where(Notification.user_id == user_id)
    if kind is not None:
        query = query.where(Notification.kind == kind)
    return list(db.session.scalars(query))


def _twin_of(service_id: int) -> int:
    """Another organisation's service just like ``service_id`` (so there is a next match)."""
    from app.directory.models import Service

    original = db.session.get(Service, service_id)
    twin = Service(organisation=factories.organisation(), name=f"Twin of {original.name}",
                   service_type=original.service_type, sectors=list(original.sectors), min_age=original.min_age,
                   max_age=original.max_age, sexes=list(original.sexes), statuses=list(original.statuses),
                   languages=list(original.languages), places=list(original.places), sms_phone="+48600999111",
                   sms_locale="pl")
    db.session.add(twin)
    db.session.commit()
    return twin.id


def _coordinator() -> User:
    user = factories.user("coordinator")
    db.session.commit()
    return user


def test_silence_reminds_at_half_time_then_expires_and_escalates(app, client, login_as):
    rid, target_ids = _sent_referral(app, client, login_as)
    with app.app_context():
        coordinator = _coordinator()
        referral = _referral(rid)
        first = referral.targets[0]
        window = first.respond_by - first.sent_at
        assert referral.status == ReferralStatus.waiting and not referral.instance.completed
        # The instance waits on the pathway's timers: the next is the half-time reminder.
        assert abs(referral.instance.next_timer_at - (first.sent_at + window / 2)) < timedelta(seconds=5)
        assert workflow.fire_due_timers() == 0  # nothing due yet

        with clock_moved(window / 2 + timedelta(minutes=1)):
            assert workflow.fire_due_timers() == 1
        referral = _referral(rid)
        assert all(t.reminded_at is not None and t.status == TargetStatus.pending for t in referral.targets)
        reminders = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
        with_phone = [t for t in referral.targets if t.service.sms_phone]
        assert len(reminders) == len(with_phone)
        for message in reminders:
            assert f"ACCEPT {message.target.code}" in message.body  # in the service's language
        assert abs(referral.instance.next_timer_at - first.respond_by) < timedelta(seconds=5)

        with clock_moved(window / 2 + timedelta(minutes=2)):
            assert workflow.fire_due_timers() == 0  # the reminder is not sent twice
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.kind == "reminder")) == len(with_phone)

        with clock_moved(window + timedelta(minutes=1)):
            assert workflow.fire_due_timers() == 1
        referral = _referral(rid)
        assert {t.status for t in referral.targets} == {TargetStatus.no_response}
        assert referral.status == ReferralStatus.follow_up and not referral.instance.completed
        assert len(_notes(coordinator.id, "alert_expired")) == len(target_ids)
        assert len(_notes(referral.created_by_id, "target_expired")) == len(target_ids)
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.referral_id == rid, AuditEvent.action == "target.escalated")) == len(target_ids)


def test_a_decline_escalates_at_once_and_the_next_matching_service_is_offered(app, client, login_as):
    rid, target_ids = _sent_referral(app, client, login_as)
    with app.app_context():
        twin = _twin_of(db.session.get(ReferralTarget, target_ids[0]).service_id)
        coordinator = _coordinator()
        for target_id in target_ids:
            decline_target(None, db.session.get(ReferralTarget, target_id), "no_capacity", channel="sms")
        db.session.commit()
        assert len(_notes(coordinator.id, "alert_declined")) == len(target_ids)
        referral = _referral(rid)
        assert len(_notes(referral.created_by_id, "target_declined")) == len(target_ids)
        assert referral.status == ReferralStatus.follow_up
        instance = referral.instance
        assert instance.pending_message == "targets_changed" and instance.next_timer_at <= utcnow()
        assert workflow.fire_due_timers() == 1  # the loop looks again
        assert _referral(rid).instance.pending_message is None
        caseworker_email = referral.created_by.email

    client.login(caseworker_email)
    page = client.get(f"/referrals/{rid}").get_data(as_text=True)
    offered = {t: re.findall(rf'<input[^>]*name="t{t}-choice"[^>]*value="([^"]+)"', page)
                  + re.findall(rf'<input[^>]*value="([^"]+)"[^>]*name="t{t}-choice"', page) for t in target_ids}
    assert all("close" in choices and "resend" not in choices for choices in offered.values()), offered
    first = target_ids[0]
    replacements = [c for c in offered[first] if c.startswith("replace:")]
    assert replacements[0] == f"replace:{twin}", "the matching service not yet asked is offered"
    response = client.post_form(f"/referrals/{rid}/targets/{first}/follow-up", {f"t{first}-choice": replacements[0]})
    assert response.status_code == 302
    with app.app_context():
        referral = _referral(rid)
        old = db.session.get(ReferralTarget, first)
        new = next(t for t in referral.targets if t.replaces_id == first)
        assert old.follow_up == "replaced" and new.status == TargetStatus.pending
        assert new.service_id == int(replacements[0].split(":")[1]) and new.respond_by > utcnow()
        assert referral.status == ReferralStatus.follow_up  # the other decline still waits for a choice
        if new.service.sms_phone:
            assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.target_id == new.id,
                                                                 OutboxMessage.kind == "referral"))
    # The same follow-up again: already done, nothing sent twice.
    again = client.post_form(f"/referrals/{rid}/targets/{first}/follow-up", {f"t{first}-choice": replacements[0]})
    assert again.status_code == 409


def test_a_forged_follow_up_choice_is_refused_next_to_the_field(app, client, login_as):
    rid, (first, _second) = _sent_referral(app, client, login_as)
    with app.app_context():
        decline_target(None, db.session.get(ReferralTarget, first), "not_eligible", channel="sms")
        db.session.commit()
        email = _referral(rid).created_by.email
        before = db.session.scalar(select(func.count()).select_from(ReferralTarget))
    client.login(email)
    response = client.post_form(f"/referrals/{rid}/targets/{first}/follow-up", {f"t{first}-choice": "replace:99999"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html or "Not a valid choice" in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReferralTarget)) == before
    # Another caseworker organisation cannot follow it up at all.
    client.post_form("/logout")
    login_as("caseworker")
    assert client.post_form(f"/referrals/{rid}/targets/{first}/follow-up",
                            {f"t{first}-choice": "close"}).status_code == 404


def test_send_again_after_no_answer_gives_a_new_deadline_and_a_new_sms(app, client, login_as):
    rid, (first, second) = _sent_referral(app, client, login_as)
    with app.app_context():
        target = db.session.get(ReferralTarget, first)
        window = target.respond_by - target.sent_at
        with clock_moved(window + timedelta(minutes=1)):
            while workflow.fire_due_timers():
                pass
        email = _referral(rid).created_by.email
    with clock_moved(window + timedelta(minutes=5)):
        client.login(email)
        response = client.post_form(f"/referrals/{rid}/targets/{first}/follow-up", {f"t{first}-choice": "resend"})
        assert response.status_code == 302, response.get_data(as_text=True)
        assert response.headers["Location"].endswith(f"/referrals/{rid}")
        with app.app_context():
            target = db.session.get(ReferralTarget, first)
            assert target.status == TargetStatus.pending and target.sends == 2 and target.follow_up is None
            assert target.respond_by - target.sent_at == window and target.respond_by > utcnow()
            keys = set(db.session.scalars(select(OutboxMessage.idempotency_key)
                                          .where(OutboxMessage.target_id == first)))
            if target.service.sms_phone:
                assert {f"target:{first}:new", f"target:{first}:new:2"} <= keys
            assert workflow.fire_due_timers() == 1
            assert abs(_referral(rid).instance.next_timer_at - (target.sent_at + window / 2)) < timedelta(seconds=5)


def test_every_answer_settled_ends_the_pathway_and_completes_the_referral(app, client, login_as):
    rid, (first, second) = _sent_referral(app, client, login_as)
    with app.app_context():
        accept_target(None, db.session.get(ReferralTarget, first), channel="sms")
        decline_target(None, db.session.get(ReferralTarget, second), "not_in_area", channel="sms")
        db.session.commit()
        assert workflow.fire_due_timers() == 1
        referral = _referral(rid)
        assert not referral.instance.completed and referral.status == ReferralStatus.follow_up
        caseworker = referral.created_by
        assert {n.kind for n in _notes(caseworker.id)} == {"target_accepted", "target_declined"}
        from app.referrals.follow_up import follow_up_target

        follow_up_target(caseworker, referral, db.session.get(ReferralTarget, second), "close")
        db.session.commit()
        assert workflow.fire_due_timers() == 1
        referral = _referral(rid)
        assert referral.instance.completed and referral.instance.next_timer_at is None
        assert referral.status == ReferralStatus.completed


def test_caseworker_chooses_sms_and_is_told_without_personal_data(app, client, login_as):
    rid, (first, _second) = _sent_referral(app, client, login_as)
    with app.app_context():
        caseworker = _referral(rid).created_by
        caseworker.locale = "es"
        db.session.commit()
        email = caseworker.email
    client.login(email)
    bad = client.post_form("/notifications/settings", {"notify_by_sms": "y", "phone": "12345"})
    assert bad.status_code == 422
    ok = client.post_form("/notifications/settings", {"notify_by_sms": "y", "phone": "+48 600 100 200"})
    assert ok.status_code == 302
    with app.app_context():
        accept_target(None, db.session.get(ReferralTarget, first), channel="sms")
        db.session.commit()
        message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "notification"))
        assert message.recipient == "+48600100200" and message.locale == "es"
        referral = _referral(rid)
        assert referral.reference in message.body and "acept" in message.body.lower()  # Spanish
        assert "Ana Example" not in message.body
        assert f"/referrals/{rid}" in message.body


def test_notifications_page_counts_unread_and_shows_only_ones_own(app, client, login_as):
    rid, (first, _second) = _sent_referral(app, client, login_as)
    with app.app_context():
        accept_target(None, db.session.get(ReferralTarget, first), channel="sms")
        db.session.commit()
        email = _referral(rid).created_by.email
    client.login(email)
    home = client.get("/referrals/").get_data(as_text=True)
    assert re.search(r'class="badge">1<', home)
    page = client.get("/notifications/").get_data(as_text=True)
    assert "accepted referral" in page and f'href="/referrals/{rid}"' in page
    client.post_form("/notifications/read")
    assert 'class="badge"' not in client.get("/referrals/").get_data(as_text=True)
    client.post_form("/logout")
    login_as("caseworker")
    assert "accepted referral" not in client.get("/notifications/").get_data(as_text=True)


def test_web_focal_points_are_told_of_new_referrals_in_the_app(app, client, login_as):
    rid, target_ids = _sent_referral(app, client, login_as)
    with app.app_context():
        for target in (db.session.get(ReferralTarget, t) for t in target_ids):
            for user in target.service.focal_users:
                assert any(n.target_id == target.id for n in _notes(user.id, "provider_new"))


def test_a_tick_costs_only_the_due_instances(app, client, login_as):
    """The tick asks the index for due instances: waiting ones that are not due are not read."""
    rid, _targets = _sent_referral(app, client, login_as)
    with app.app_context():
        now = utcnow()
        assert workflow.due_instances(now, 50) == []
        with clock_moved(timedelta(days=30)):
            assert workflow.due_instances(utcnow(), 50) == [_referral(rid).instance_id]
        query = select(WorkflowInstance.id).where(WorkflowInstance.next_timer_at <= now,
                                                  WorkflowInstance.completed.is_(False)) \
            .order_by(WorkflowInstance.next_timer_at).limit(50)
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        if db.engine.dialect.name == "sqlite":
            plan = " ".join(str(r) for r in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
        else:
            db.session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(str(r) for r in db.session.execute(text("EXPLAIN " + sql)))
        assert "ix_workflow_instances_next_timer_at" in plan, plan


def test_a_broken_instance_does_not_stop_the_tick(app, client, login_as, caplog):
    rid, _targets = _sent_referral(app, client, login_as)
    with app.app_context():
        good = _referral(rid).instance_id
        broken = WorkflowInstance(version=_referral(rid).version, state='{"not": "a workflow"}',
                                  next_timer_at=utcnow() - timedelta(minutes=1))
        db.session.add(broken)
        db.session.commit()
        broken_id = broken.id
        with clock_moved(timedelta(days=30)):
            assert workflow.fire_due_timers() == 1
            db.session.expire_all()
            assert db.session.get(WorkflowInstance, broken_id).next_timer_at > utcnow()
        assert any(str(broken_id) in r.getMessage() and "tick failed" in r.getMessage() for r in caplog.records)
        assert db.session.get(WorkflowInstance, good).revision > 1


def test_a_referral_on_a_version_without_the_loop_ignores_the_poke(app, client, login_as):
    rid, (first, _second) = _sent_referral(app, client, login_as)
    with app.app_context():
        instance = _referral(rid).instance
        workflow.poke_instance(instance.id, "no_such_message")
        db.session.commit()
        assert workflow.fire_due_timers() == 1  # delivered to nobody, nothing breaks
        assert _referral(rid).instance.pending_message is None


def test_coordinators_get_alerts_not_referral_contents(app, client, login_as):
    rid, (first, _second) = _sent_referral(app, client, login_as)
    with app.app_context():
        coordinator = _coordinator()
        coordinator.password_hash = factories._password_hash()
        decline_target(None, db.session.get(ReferralTarget, first), "no_capacity", channel="sms")
        db.session.commit()
        email = coordinator.email
        role = db.session.scalar(select(User.role).where(User.id == coordinator.id))
        assert role == Role.coordinator
    client.login(email)
    page = client.get("/notifications/").get_data(as_text=True)
    assert "declined a referral" in page
    assert client.get(f"/referrals/{rid}").status_code in (403, 404)


@pytest.mark.parametrize("locale", ["en", "es", "pl", "uk"])
def test_the_reminder_fits_two_segments_in_every_language(app_ctx, locale):
    from app.directory.models import Service
    from app.sms.services import render_reminder_sms, segments

    service = Service(service_type="legal_aid", sms_locale=locale, sms_phone="+10000000000")
    target = ReferralTarget(id=99_999_999, code="K7M2QX", urgency="emergency",
                            respond_by=datetime(2026, 12, 31, 23, 59, tzinfo=UTC), service=service)
    rendered_locale, body = render_reminder_sms(target)
    assert rendered_locale == locale
    assert segments(body) <= 2, (locale, len(body), body)
    assert "ACCEPT K7M2QX" in body and "DECLINE K7M2QX" in body and body.endswith("/inbox/99999999")


def _referral_message(target_id: int) -> OutboxMessage:
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.target_id == target_id,
                                                            OutboxMessage.kind == "referral"))
    if message is None:  # the service has no SMS phone in the demo data: give it one
        from app.sms.services import queue_new_referral

        target = db.session.get(ReferralTarget, target_id)
        target.service.sms_phone = "+48600111222"
        message = queue_new_referral(target)
    return message


def test_an_undeliverable_sms_falls_back_to_the_web_focal_points(app, client, login_as):
    from app.sms.signals import message_undeliverable

    rid, (first, _second) = _sent_referral(app, client, login_as)
    with app.app_context():
        coordinator = _coordinator()
        target = db.session.get(ReferralTarget, first)
        if not target.service.focal_users:
            target.service.focal_users.append(factories.user("provider", organisation=target.organisation))
        message_undeliverable.send(_referral_message(first), reason="30003")
        db.session.commit()
        target = db.session.get(ReferralTarget, first)
        assert target.status == TargetStatus.pending and target.delivery_failed_at is not None
        assert _notes(coordinator.id, "alert_undeliverable")
        assert _notes(target.referral.created_by_id, "target_undeliverable")
        # Told once, however many failures are reported.
        message_undeliverable.send(_referral_message(first), reason="30006")
        db.session.commit()
        assert len(_notes(coordinator.id, "alert_undeliverable")) == 1


def test_an_unreachable_service_escalates_like_a_non_answer(app, client, login_as):
    from app.sms.signals import message_undeliverable

    rid, (first, _second) = _sent_referral(app, client, login_as)
    with app.app_context():
        coordinator = _coordinator()
        target = db.session.get(ReferralTarget, first)
        target.service.focal_users.clear()
        message_undeliverable.send(_referral_message(first), reason="opted_out")
        db.session.commit()
        target = db.session.get(ReferralTarget, first)
        assert target.status == TargetStatus.no_response and target.escalated_at is not None
        assert _notes(coordinator.id, "alert_undeliverable")
        assert _notes(target.referral.created_by_id, "target_unreachable")
        assert _referral(rid).status == ReferralStatus.follow_up
