"""The service directory: places, services (Open Referral HSDS-like) and recorded gaps.

An :class:`~app.auth.models.Organisation` is the HSDS *organization*; a :class:`Service`
is what it offers, where (``places``: its service areas), to whom (eligibility) and in which
languages, with the phone its SMS notifications go to.
"""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, Column, Enum, ForeignKey, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import Organisation, User
from app.core.db import UTCDateTime, utcnow
from app.extensions import db


class PlaceLevel(enum.Enum):
    country = "country"
    region = "region"
    municipality = "municipality"

    @property
    def title(self) -> str:
        return str(PLACE_LEVEL_TITLES[self])


PLACE_LEVEL_TITLES = {
    PlaceLevel.country: _l("Country"),
    PlaceLevel.region: _l("Region"),
    PlaceLevel.municipality: _l("Municipality"),
}


class Place(db.Model):
    """A country, region or municipality; places nest (a municipality's parent is a region)."""

    __tablename__ = "places"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Slash path of lower-case slugs, e.g. ``ve/zulia/maracaibo``; stable, used in CSV files.
    code: Mapped[str] = mapped_column(String(120), unique=True)
    #: Name in the place's own language, e.g. "Przemyśl".
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[PlaceLevel] = mapped_column(Enum(PlaceLevel, name="place_level", native_enum=False, length=20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"), index=True)

    parent: Mapped[Place | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Place]] = relationship(back_populates="parent", order_by="Place.name")

    @property
    def ancestors(self) -> list[Place]:
        """Parent first, country last."""
        found, place = [], self.parent
        while place is not None:
            found.append(place)
            place = place.parent
        return found

    @property
    def label(self) -> str:
        """The place and its ancestors, e.g. "Maracaibo, Zulia, Venezuela"."""
        return ", ".join(p.name for p in [self, *self.ancestors])

    def __repr__(self) -> str:
        return f"<Place {self.code}>"


#: The service areas of a service (HSDS ``service_area``).
service_places = Table(
    "service_places",
    db.metadata,
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("place_id", ForeignKey("places.id", ondelete="CASCADE"), primary_key=True, index=True),
)

#: The provider users who receive and answer a service's referrals.
service_focal_users = Table(
    "service_focal_users",
    db.metadata,
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Service(db.Model):
    """A service an organisation offers (HSDS ``service`` with eligibility and areas)."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("organisation_id", "name", name="uq_services_organisation_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: A code of ``taxonomy.SERVICE_TYPES``.
    service_type: Mapped[str] = mapped_column(String(40), index=True)
    #: Codes of ``taxonomy.SECTORS`` (CP, GBV, CT) the service works in.
    sectors: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Eligible ages, inclusive; None means no bound.
    min_age: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    #: Codes of ``taxonomy.SEXES``; empty means everyone.
    sexes: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Codes of ``taxonomy.STATUSES``; empty means everyone.
    statuses: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Codes of ``taxonomy.LANGUAGES`` the staff speak.
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    opening_hours: Mapped[str] = mapped_column(Text, default="")
    #: Whether the provider takes new referrals at all (set by the provider or in the CSV).
    accepting_referrals: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Places free now; None means unknown, 0 means full.
    capacity: Mapped[int | None] = mapped_column(Integer)
    #: Set by a coordinator (e.g. a complaint under review): not offered to caseworkers.
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: E.164 number that receives referral SMS, e.g. "+584120001234".
    sms_phone: Mapped[str | None] = mapped_column(String(16))
    #: Language of the SMS sent to ``sms_phone`` (one of ``taxonomy.SMS_LOCALES``).
    sms_locale: Mapped[str] = mapped_column(String(8), default="en")
    #: When a coordinator last confirmed the entry is correct.
    last_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation] = relationship()
    places: Mapped[list[Place]] = relationship(secondary=service_places, order_by="Place.code")
    focal_users: Mapped[list[User]] = relationship(secondary=service_focal_users, order_by="User.email")

    @property
    def available(self) -> bool:
        """Offered to caseworkers: not paused, accepting, and not known to be full."""
        return not self.paused and self.accepting_referrals and self.capacity != 0

    def __repr__(self) -> str:
        return f"<Service {self.id} {self.name!r}>"


class ServiceGap(db.Model):
    """A needed service type that no listed service could provide for a referral."""

    __tablename__ = "service_gaps"
    __table_args__ = (UniqueConstraint("referral_id", "service_type", name="uq_service_gaps_referral_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    service_type: Mapped[str] = mapped_column(String(40))
    sector: Mapped[str | None] = mapped_column(String(10))
    #: Code of the person's place (not a foreign key: a gap outlives a renamed place).
    place_code: Mapped[str | None] = mapped_column(String(120))
    #: Why: ``none_listed`` (no service of the type serves the place) or ``none_eligible``.
    reason: Mapped[str] = mapped_column(String(40), default="none_listed")
