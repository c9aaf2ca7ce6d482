"""The studio's working copy of a pathway: one shared draft per pathway until it is published."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import UTCDateTime, utcnow
from app.extensions import db
from app.workflow.models import Pathway, PathwayVersion


class PathwayDraft(db.Model):
    """Files a coordinator is editing. A draft may be invalid; only a valid one is published.

    Saving compares ``revision``: two coordinators editing at once never overwrite each other
    silently — the second save is refused and asks to reload.
    """

    __tablename__ = "pathway_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    pathway_id: Mapped[int] = mapped_column(ForeignKey("pathways.id", ondelete="CASCADE"), unique=True)
    #: {file name: XML text}, as in :attr:`PathwayVersion.files`.
    files: Mapped[dict] = mapped_column(JSON)
    main_file: Mapped[str] = mapped_column(String(200))
    #: The version the draft started from (None for a new pathway).
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("pathway_versions.id"))
    #: Bumped on every save.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    pathway: Mapped[Pathway] = relationship()
    base_version: Mapped[PathwayVersion | None] = relationship()
