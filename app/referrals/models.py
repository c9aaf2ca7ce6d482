"""Referral, the answers given at each step, and saved drafts."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import Organisation, User
from app.core.db import UTCDateTime, utcnow
from app.extensions import db
from app.workflow.models import PathwayVersion, WorkflowInstance


class ReferralStatus(enum.Enum):
    in_progress = "in_progress"
    waiting = "waiting"
    follow_up = "follow_up"
    completed = "completed"
    cancelled = "cancelled"

    @property
    def title(self) -> str:
        return str(STATUS_TITLES[self])


STATUS_TITLES = {
    ReferralStatus.in_progress: _l("In progress"),
    ReferralStatus.waiting: _l("Waiting for others"),
    ReferralStatus.follow_up: _l("Needs your follow-up"),
    ReferralStatus.completed: _l("Completed"),
    ReferralStatus.cancelled: _l("Cancelled"),
}


class Referral(db.Model):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_org_status_updated", "organisation_id", "status", "updated_at"),
        #: The caseworker list (newest activity first, no status filter) reads this in order.
        Index("ix_referrals_org_updated_id", "organisation_id", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Public reference, e.g. ``R-7K3M9Q``; never contains personal data.
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    #: The referring organisation; its caseworkers can see the referral.
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: The referral whose pathway started this one (a cross-referral, e.g. GBV -> CP).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("pathway_versions.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("workflow_instances.id"), unique=True)
    status: Mapped[ReferralStatus] = mapped_column(
        Enum(ReferralStatus, name="referral_status", native_enum=False, length=20),
        default=ReferralStatus.in_progress,
    )
    #: Title of the step waiting now (a cache for listings; the task rows are the truth).
    current_step: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship()
    created_by: Mapped[User] = relationship()
    version: Mapped[PathwayVersion] = relationship()
    instance: Mapped[WorkflowInstance] = relationship()
    parent: Mapped[Referral | None] = relationship(remote_side=[id], back_populates="linked")
    linked: Mapped[list[Referral]] = relationship(back_populates="parent", order_by="Referral.id")
    targets: Mapped[list[ReferralTarget]] = relationship(
        back_populates="referral", order_by="ReferralTarget.id", cascade="all, delete-orphan")


class FormSubmission(db.Model):
    """The answers given at one step — personal data lives here, not in the workflow state."""

    __tablename__ = "form_submissions"
    __table_args__ = (Index("ix_form_submissions_referral_id_step", "referral_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    #: BPMN id of the user task, and the SpiffWorkflow task id it completed.
    step: Mapped[str] = mapped_column(String(200))
    task_uuid: Mapped[str] = mapped_column(String(36))
    form_key: Mapped[str] = mapped_column(String(100))
    #: All answers, personal ones included.
    answers: Mapped[dict] = mapped_column(JSON)
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set when the caseworker went back past this step; the new answers supersede it.
    superseded: Mapped[bool] = mapped_column(default=False)

    submitted_by: Mapped[User] = relationship()


class StepDraft(db.Model):
    """Unvalidated answers saved for later, one per referral and step."""

    __tablename__ = "step_drafts"
    __table_args__ = (UniqueConstraint("referral_id", "step", name="uq_step_drafts_referral_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(200))
    answers: Mapped[dict] = mapped_column(JSON)
    saved_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TargetStatus(enum.Enum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    blocked = "blocked"
    cancelled = "cancelled"
    no_response = "no_response"

    @property
    def title(self) -> str:
        return str(TARGET_STATUS_TITLES[self])


TARGET_STATUS_TITLES = {
    TargetStatus.pending: _l("Waiting for the provider"),
    TargetStatus.accepted: _l("Accepted"),
    TargetStatus.declined: _l("Declined"),
    TargetStatus.blocked: _l("Not sent: consent does not cover this organisation"),
    TargetStatus.cancelled: _l("Cancelled"),
    TargetStatus.no_response: _l("No response in time"),
}


class ReferralTarget(db.Model):
    """One receiving service of a referral, with its own status."""

    __tablename__ = "referral_targets"
    __table_args__ = (
        UniqueConstraint("referral_id", "service_id", name="uq_referral_targets_referral_service"),
        Index("ix_referral_targets_org_status", "organisation_id", "status"),
        #: The provider inbox (earliest deadline first) reads this in order.
        Index("ix_referral_targets_org_respond_by_id", "organisation_id", "respond_by", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    #: The receiving organisation (the service's, copied: what the consent was checked against).
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    #: Short code a provider quotes (by SMS too); carries no personal data, e.g. ``K7M2QX``.
    code: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[TargetStatus] = mapped_column(
        Enum(TargetStatus, name="target_status", native_enum=False, length=20),
        default=TargetStatus.pending)
    #: Urgency at the time of sending and the deadline it implies for the provider's answer.
    urgency: Mapped[str | None] = mapped_column(String(20))
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Who answered, when, how (web | sms), and for a decline the coded reason and a note.
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    response_channel: Mapped[str | None] = mapped_column(String(10))
    decline_reason: Mapped[str | None] = mapped_column(String(40))
    response_note: Mapped[str | None] = mapped_column(Text)
    #: What the provider reports after accepting (service_provided, partially_provided, ...).
    outcome: Mapped[str | None] = mapped_column(String(40))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the provider was (last) asked: the deadline's start, for the half-time reminder.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: How many times it was sent (a re-send after no answer counts again).
    sends: Mapped[int] = mapped_column(Integer, default=1)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the coordinator was alerted and the caseworker told (decline, no answer).
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When an SMS to the service could not be delivered (failed, opted out).
    delivery_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The caseworker's decision after a decline or no answer: replaced | resent | closed.
    follow_up: Mapped[str | None] = mapped_column(String(20))
    followed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    followed_up_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: The target this one replaced (the caseworker chose the next matching service).
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("referral_targets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="targets")
    organisation: Mapped[Organisation] = relationship()
    service: Mapped[Service] = relationship("Service")  # noqa: F821 - app.directory.models


class Consent(db.Model):
    """The informed consent recorded for a referral: who gave it, to share what, with whom, why.

    Checked on the server before anything is sent to an organisation.
    """

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), unique=True)
    given: Mapped[bool] = mapped_column()
    #: person | caregiver | best_interest (a documented best-interest decision for a child).
    given_by: Mapped[str | None] = mapped_column(String(20))
    #: Information categories the person agreed to share.
    shared_information: Mapped[list] = mapped_column(JSON, default=list)
    #: any_selected | named
    organisation_scope: Mapped[str | None] = mapped_column(String(20))
    #: Organisation ids, when the scope is ``named``.
    organisation_ids: Mapped[list] = mapped_column(JSON, default=list)
    purposes: Mapped[list] = mapped_column(JSON, default=list)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def covers(self, organisation_id: int) -> bool:
        """Whether this consent allows sending the referral to ``organisation_id``."""
        if not self.given:
            return False
        if self.organisation_scope == "any_selected":
            return True
        return self.organisation_scope == "named" and organisation_id in (self.organisation_ids or [])
