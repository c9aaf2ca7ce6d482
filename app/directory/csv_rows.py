"""One CSV row of the directory <-> the fields of a service (used by :mod:`.csv_io`).

Every cell is read with a clear, translated message for what is wrong; nothing here writes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask_babel import gettext as _

from app.directory import taxonomy
from app.directory.models import Service
from app.directory.services import normalise_phone

#: The columns, in order: one row per service, with its organisation (Open Referral-like).
COLUMNS = (
    "service_id", "organization_name", "organization_acronym", "service_name", "service_description",
    "service_type", "sectors", "service_areas", "eligibility_min_age", "eligibility_max_age",
    "eligibility_sexes", "eligibility_statuses", "languages", "opening_hours", "accepting_referrals",
    "capacity", "sms_phone", "sms_language", "status", "last_verified",
)
#: Service attribute -> the column that sets it (for messages from ``services.check_service``).
FIELD_COLUMNS = {
    "name": "service_name", "description": "service_description", "service_type": "service_type",
    "sectors": "sectors", "places": "service_areas", "min_age": "eligibility_min_age",
    "max_age": "eligibility_max_age", "sexes": "eligibility_sexes", "statuses": "eligibility_statuses",
    "languages": "languages", "opening_hours": "opening_hours", "accepting_referrals": "accepting_referrals",
    "capacity": "capacity", "sms_phone": "sms_phone", "sms_locale": "sms_language",
}
#: Free-text columns a spreadsheet could run as a formula; exported with a leading apostrophe.
TEXT_COLUMNS = ("organization_name", "organization_acronym", "service_name", "service_description",
                "opening_hours")
_FORMULA_START = ("=", "+", "-", "@")
_YES, _NO = {"yes", "y", "true", "1", "sí", "si", "tak", "так"}, {"no", "n", "false", "0", "nie", "ні"}


class RowError(ValueError):
    """A cell cannot be read; the message is translated and names no row or column."""


def split_list(cell: str) -> list[str]:
    """``"a; b;;c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in cell.split(";") if part.strip()]


def unguard(cell: str) -> str:
    """Remove the apostrophe :func:`guard` put before a text starting like a formula."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


def guard(cell: str) -> str:
    """Keep a spreadsheet from running a text cell as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _codes(cell: str, vocabulary: dict, *, upper: bool = False) -> list[str]:
    codes = [c.upper() if upper else c.lower() for c in split_list(cell)]
    unknown = [c for c in codes if c not in vocabulary]
    if unknown:
        raise RowError(_("unknown %(values)s; use %(codes)s", values=", ".join(unknown),
                         codes=", ".join(vocabulary)))
    return list(dict.fromkeys(codes))


def _service_type(cell: str) -> str:
    if not cell:
        raise RowError(_("required"))
    if cell.lower() not in taxonomy.SERVICE_TYPES:
        raise RowError(_("unknown service type %(value)s; use %(codes)s", value=cell,
                         codes=", ".join(taxonomy.SERVICE_TYPES)))
    return cell.lower()


def _number(cell: str) -> int | None:
    if not cell:
        return None
    try:
        value = int(cell)
    except ValueError:
        raise RowError(_("not a whole number (%(value)s)", value=cell)) from None
    if value < 0:
        raise RowError(_("must be 0 or more"))
    return value


def _yes_no(cell: str, default: bool) -> bool:
    if not cell:
        return default
    if cell.lower() in _YES:
        return True
    if cell.lower() in _NO:
        return False
    raise RowError(_("write yes or no (%(value)s)", value=cell))


def _day(cell: str) -> date | None:
    if not cell:
        return None
    try:
        return date.fromisoformat(cell)
    except ValueError:
        raise RowError(_("not a date like 2026-03-31 (%(value)s)", value=cell)) from None


def read_row(row: dict[str, str], places: dict) -> tuple[dict, dict[str, str]]:
    """Parse one row into ``(values, errors by column)``.

    ``values`` holds the service fields (``services.SERVICE_FIELDS`` names, places as Place
    rows from ``places``: code -> Place) plus ``service_id``, ``organisation``, ``acronym``,
    ``paused`` and ``verified_on``; a column with an error is left out.
    """
    values: dict = {}
    errors: dict[str, str] = {}

    def cell(column: str) -> str:
        text = (row.get(column) or "").strip()
        return unguard(text) if column in TEXT_COLUMNS else text

    readers = {
        "service_id": ("service_id", lambda c: _number(c)),
        "organization_name": ("organisation", lambda c: c),
        "organization_acronym": ("acronym", lambda c: c),
        "service_name": ("name", lambda c: c),
        "service_description": ("description", lambda c: c),
        "service_type": ("service_type", _service_type),
        "sectors": ("sectors", lambda c: _codes(c, taxonomy.SECTORS, upper=True)),
        "service_areas": ("places", lambda c: _places(c, places)),
        "eligibility_min_age": ("min_age", _number),
        "eligibility_max_age": ("max_age", _number),
        "eligibility_sexes": ("sexes", lambda c: _codes(c, taxonomy.SEXES)),
        "eligibility_statuses": ("statuses", lambda c: _codes(c, taxonomy.STATUSES)),
        "languages": ("languages", lambda c: _codes(c, taxonomy.LANGUAGES)),
        "opening_hours": ("opening_hours", lambda c: c),
        "accepting_referrals": ("accepting_referrals", lambda c: _yes_no(c, True)),
        "capacity": ("capacity", _number),
        "sms_phone": ("sms_phone", normalise_phone),
        "sms_language": ("sms_locale", lambda c: c.lower() or "en"),
        "status": ("paused", _status),
        "last_verified": ("verified_on", _day),
    }
    for column, (name, reader) in readers.items():
        try:
            values[name] = reader(cell(column))
        except RowError as exc:
            errors[column] = str(exc)
    if "organisation" in values and not values["organisation"]:
        errors["organization_name"] = _("required")
        del values["organisation"]
    return values, errors


def _places(cell: str, places: dict) -> list:
    codes = [c.lower() for c in split_list(cell)]
    unknown = [c for c in codes if c not in places]
    if unknown:
        raise RowError(_("unknown place codes: %(codes)s", codes=", ".join(unknown)))
    return [places[c] for c in dict.fromkeys(codes)]


def _status(cell: str) -> bool:
    if cell.lower() in ("", "active"):
        return False
    if cell.lower() == "paused":
        return True
    raise RowError(_("write active or paused (%(value)s)", value=cell))


def write_row(service: Service) -> dict[str, str]:
    """The CSV cells of ``service``."""
    verified = service.last_verified_at.astimezone(UTC).date().isoformat() if service.last_verified_at else ""
    cells = {
        "service_id": str(service.id),
        "organization_name": service.organisation.name,
        "organization_acronym": service.organisation.acronym or "",
        "service_name": service.name,
        "service_description": service.description or "",
        "service_type": service.service_type,
        "sectors": ";".join(service.sectors or []),
        "service_areas": ";".join(p.code for p in service.places),
        "eligibility_min_age": "" if service.min_age is None else str(service.min_age),
        "eligibility_max_age": "" if service.max_age is None else str(service.max_age),
        "eligibility_sexes": ";".join(service.sexes or []),
        "eligibility_statuses": ";".join(service.statuses or []),
        "languages": ";".join(service.languages or []),
        "opening_hours": service.opening_hours or "",
        "accepting_referrals": "yes" if service.accepting_referrals else "no",
        "capacity": "" if service.capacity is None else str(service.capacity),
        "sms_phone": service.sms_phone or "",
        "sms_language": service.sms_locale,
        "status": "paused" if service.paused else "active",
        "last_verified": verified,
    }
    return {k: guard(v) if k in TEXT_COLUMNS else v for k, v in cells.items()}


def verified_at(day: date | None, current: datetime | None) -> datetime | None:
    """The ``last_verified_at`` a row asks for: keep ``current`` when it falls on ``day``."""
    if day is None:
        return None
    if current is not None and current.astimezone(UTC).date() == day:
        return current
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
