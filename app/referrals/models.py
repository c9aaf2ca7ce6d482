"""Referral, the answers given at each step, and saved drafts."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import Organisation, User
from app.core.db import UTCDateTime, utcnow
from app.extensions import db
from app.workflow.models import PathwayVersion, WorkflowInstance


class ReferralStatus(enum.Enum):
    in_progress = "in_progress"
    waiting = "waiting"
    completed = "completed"
    cancelled = "cancelled"

    @property
    def title(self) -> str:
        return str(STATUS_TITLES[self])


STATUS_TITLES = {
    ReferralStatus.in_progress: _l("In progress"),
    ReferralStatus.waiting: _l("Waiting for others"),
    ReferralStatus.completed: _l("Completed"),
    ReferralStatus.cancelled: _l("Cancelled"),
}


class Referral(db.Model):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_org_status_updated", "organisation_id", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Public reference, e.g. ``R-7K3M9Q``; never contains personal data.
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    #: The referring organisation; its caseworkers can see the referral.
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
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
