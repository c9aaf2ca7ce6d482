"""Pathways, their published versions, and running workflow instances."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import UTCDateTime, utcnow
from app.extensions import db


class Pathway(db.Model):
    """A referral pathway, identified by the process id of its main BPMN process."""

    __tablename__ = "pathways"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The main process id, e.g. ``demo_referral``.
    key: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[PathwayVersion]] = relationship(
        back_populates="pathway", order_by="PathwayVersion.number"
    )


class PathwayVersion(db.Model):
    """One published version of a pathway: its files, and the spec parsed from them once.

    Versions are immutable. Publishing (from ``workflows/`` or the studio) adds a version;
    rolling back adds a version with an earlier one's files; the newest number is current.
    """

    __tablename__ = "pathway_versions"
    __table_args__ = (
        UniqueConstraint("pathway_id", "number", name="uq_pathway_versions_pathway_number"),
        Index("ix_pathway_versions_pathway_id_content_hash", "pathway_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pathway_id: Mapped[int] = mapped_column(ForeignKey("pathways.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    #: {file name: XML text} for the main BPMN file and every file it calls (BPMN, DMN).
    files: Mapped[dict] = mapped_column(JSON)
    #: SHA-256 over the sorted file names and contents (rolling back repeats an earlier hash).
    content_hash: Mapped[str] = mapped_column(String(64))
    #: The serialized process spec and subprocess specs, parsed once at publication.
    spec_json: Mapped[str] = mapped_column(Text)
    #: Form keys used by the version's user tasks (checked against forms/ at publication).
    form_keys: Mapped[list] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Who published it; None for versions published from ``workflows/`` by the CLI.
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: ``files`` (workflows/ by the CLI), ``studio`` (a coordinator's draft) or ``rollback``.
    source: Mapped[str] = mapped_column(String(20), default="files")
    #: The file holding the main process (a key of ``files``).
    main_file: Mapped[str] = mapped_column(String(200), default="")
    #: For a rollback: the number of the version whose files it publishes again.
    restores_number: Mapped[int | None] = mapped_column(Integer)

    pathway: Mapped[Pathway] = relationship(back_populates="versions")


class WorkflowInstance(db.Model):
    """A running (or finished) pathway. ``state`` holds the workflow without its spec."""

    __tablename__ = "workflow_instances"
    __table_args__ = (Index("ix_workflow_instances_next_timer_at", "next_timer_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("pathway_versions.id"), index=True)
    #: Serialized workflow state (JSON), specs stripped; re-joined with the version's spec.
    state: Mapped[str] = mapped_column(Text)
    #: Bumped on every write; a stale writer fails instead of overwriting (optimistic lock).
    revision: Mapped[int] = mapped_column(Integer, default=1)
    completed: Mapped[bool] = mapped_column(default=False)
    #: When the earliest waiting timer is due; the worker loads only due instances.
    next_timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A message for the workflow (e.g. ``targets_changed``) that the worker delivers on its next
    #: tick; setting it also sets ``next_timer_at`` to now (see ``services.poke_instance``).
    pending_message: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    version: Mapped[PathwayVersion] = relationship()
    tasks: Mapped[list[WorkflowTask]] = relationship(
        back_populates="instance", order_by="WorkflowTask.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": revision}


class WorkflowTask(db.Model):
    """A human task of an instance: ready now, or its record once done or undone."""

    __tablename__ = "workflow_tasks"
    __table_args__ = (Index("ix_workflow_tasks_instance_id_state", "instance_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_instances.id", ondelete="CASCADE")
    )
    #: SpiffWorkflow's task id (UUID string).
    task_uuid: Mapped[str] = mapped_column(String(36))
    #: The BPMN element id of the task.
    spec_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    form_key: Mapped[str | None] = mapped_column(String(100))
    #: The lane, i.e. the role expected to do it (``caseworker``, ``provider`` ...).
    lane: Mapped[str | None] = mapped_column(String(100))
    #: ready | completed | reverted | cancelled
    state: Mapped[str] = mapped_column(String(20), default="ready")
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    instance: Mapped[WorkflowInstance] = relationship(back_populates="tasks")
