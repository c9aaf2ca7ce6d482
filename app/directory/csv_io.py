"""Import and export the directory as CSV: one row per service, with its organisation.

Import checks every row before writing anything and raises :class:`CsvImportError` with
every problem ("row 7, sms_phone: ..."; the header is row 1, as in a spreadsheet). Rows with
a ``service_id`` update that service; rows without one create a service, or update the
organisation's service of the same name. Unknown organisations are created (the acronym is
used only then). Focal points are kept as they are: they are chosen on the web page.
Export writes the same columns, so exporting and importing again changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.auth import services as auth
from app.auth.models import Organisation, User
from app.directory import services
from app.directory.csv_rows import COLUMNS, FIELD_COLUMNS, read_row, verified_at, write_row
from app.directory.models import Place, Service
from app.extensions import db

MAX_ROWS = 10_000
#: Larger uploads are refused before they are read (a directory of 10,000 rows is ~3 MB).
MAX_BYTES = 10 * 1024 * 1024
#: Written by export so spreadsheet programs read the file as UTF-8.
BOM = "\ufeff"


class CsvImportError(ValueError):
    """The file cannot be imported; ``errors`` lists every problem, translated."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    organisations_created: int = 0

    def __str__(self) -> str:
        return ngettext("%(num)d service imported or updated, %(same)d unchanged.",
                        "%(num)d services imported or updated, %(same)d unchanged.",
                        self.created + self.updated, same=self.unchanged)


def _not_csv() -> CsvImportError:
    return CsvImportError([_("This is not a CSV text file. In your spreadsheet, choose "
                             "\"Save as\" and the format \"CSV UTF-8\", then upload that file.")])


def decode(data: bytes | str) -> str:
    """The text of an uploaded file; a UTF-8 BOM is dropped. Raises :class:`CsvImportError`."""
    if len(data) > MAX_BYTES:
        raise CsvImportError([_("The file is larger than %(n)d MB.", n=MAX_BYTES // (1024 * 1024))])
    if isinstance(data, bytes):
        if b"\x00" in data:
            raise _not_csv()
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _not_csv() from None
    text = data.removeprefix(BOM)
    if "\x00" in text:
        raise _not_csv()
    if not text.strip():
        raise CsvImportError([_("The file is empty.")])
    return text


def read_table(text: str) -> list[tuple[int, dict[str, str]]]:
    """``(spreadsheet row number, cells by column)`` for each non-empty data row.

    Raises :class:`CsvImportError` when the header lacks or adds columns, a row has too
    few cells, or the text is not CSV at all. Semicolon-separated files are read too.
    """
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise CsvImportError([_("The file could not be read as CSV: %(error)s", error=str(exc))]) from None
    header = [name.strip().lower() for name in records[0]]
    problems = []
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    twice = sorted({c for c in header if c and header.count(c) > 1})
    if missing:
        problems.append(_("Missing columns: %(columns)s.", columns=", ".join(missing)))
    if unknown:
        problems.append(_("Unknown columns: %(columns)s.", columns=", ".join(c or '""' for c in unknown)))
    if twice:
        problems.append(_("Columns named more than once: %(columns)s.", columns=", ".join(twice)))
    if problems:
        raise CsvImportError(problems)
    if len(records) - 1 > MAX_ROWS:
        raise CsvImportError([_("The file has more than %(n)d rows.", n=MAX_ROWS)])
    rows, errors = [], []
    for number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) < len(header) or any(cell.strip() for cell in record[len(header):]):
            errors.append(_("row %(row)d: %(found)d cells, but the header has %(expected)d columns",
                            row=number, found=len(record), expected=len(header)))
            continue
        rows.append((number, dict(zip(header, record, strict=False))))
    if errors:
        raise CsvImportError(errors)
    return rows


def _key(organisation_name: str, service_name: str) -> tuple[str, str]:
    return organisation_name.strip().casefold(), service_name.strip().casefold()


def _cell_error(row: int, column: str, message: str) -> str:
    return _("row %(row)d, %(column)s: %(message)s", row=row, column=column, message=message)


def import_services(data: bytes | str, *, by: User | None = None) -> ImportSummary:
    """Check every row of the CSV ``data``, then create or update the services; flush.

    Raises :class:`CsvImportError` listing every problem, before writing anything (the
    caller rolls back in any case, so a rule broken while writing leaves nothing behind).
    """
    rows = read_table(decode(data))
    places = {p.code: p for p in db.session.scalars(select(Place))}
    orgs = {o.name.casefold(): o for o in db.session.scalars(select(Organisation))}
    existing = db.session.scalars(select(Service).options(selectinload(Service.places))).all()
    by_id = {s.id: s for s in existing}
    by_name = {_key(s.organisation.name, s.name): s for s in existing}
    parsed, errors, seen_keys, seen_ids = [], [], {}, {}
    for number, row in rows:
        values, problems = read_row(row, places)
        service = None
        if values.get("service_id") is not None:
            service = by_id.get(values["service_id"])
            if service is None:
                problems["service_id"] = _("no service has this id")
            elif values["service_id"] in seen_ids:
                problems["service_id"] = _("also on row %(row)d", row=seen_ids[values["service_id"]])
            elif values.get("organisation") and _key(values["organisation"], "") != _key(service.organisation.name, ""):
                problems["organization_name"] = _("service %(id)d belongs to %(organisation)s",
                                                  id=service.id, organisation=service.organisation.name)
            seen_ids.setdefault(values["service_id"], number)
        if values.get("organisation") and values.get("name"):
            key = _key(values["organisation"], values["name"])
            if key in seen_keys:
                problems.setdefault("service_name", _("this organisation's service is also on row %(row)d",
                                                      row=seen_keys[key]))
            seen_keys.setdefault(key, number)
            service = service or by_name.get(key)
        fields = {k: v for k, v in values.items() if k in services.SERVICE_FIELDS}
        for field, message in services.check_service(fields).items():
            problems.setdefault(FIELD_COLUMNS.get(field, field), message)
        errors += [_cell_error(number, column, problems[column]) for column in COLUMNS if column in problems]
        parsed.append((number, values, fields, service))
    if errors:
        raise CsvImportError(errors)
    return _write(parsed, orgs, by)


def _write(parsed: list, orgs: dict[str, Organisation], by: User | None) -> ImportSummary:
    summary = ImportSummary()
    errors = []
    for number, values, fields, service in parsed:
        org = orgs.get(values["organisation"].casefold())
        if org is None:
            org = auth.create_organisation(values["organisation"], values.get("acronym") or "",
                                           values.get("sms_locale") or "en")
            orgs[org.name.casefold()] = org
            summary.organisations_created += 1
        try:
            changed = _save(org, service, fields, values, by)
        except services.InvalidService as exc:
            errors += [_cell_error(number, FIELD_COLUMNS.get(f, f), m) for f, m in exc.errors.items()]
            continue
        if service is None:
            summary.created += 1
        elif changed:
            summary.updated += 1
        else:
            summary.unchanged += 1
    if errors:
        raise CsvImportError(errors)
    return summary


def _save(org: Organisation, service: Service | None, fields: dict, values: dict, by: User | None) -> bool:
    """Create or update one service from a row; True if anything changed."""
    if service is None:
        service = services.create_service(org, by=by, **fields)
        changes = {}
    else:
        changes = {k: v for k, v in fields.items()
                   if (set(v) != set(service.places) if k == "places" else getattr(service, k) != v)}
        if changes:
            services.update_service(service, by=by, **changes)
    paused_changed = service.paused != values["paused"]
    if paused_changed:
        (services.pause_service if values["paused"] else services.resume_service)(service, by=by)
    verified = verified_at(values["verified_on"], service.last_verified_at)
    verified_changed = verified != service.last_verified_at
    if verified_changed:
        service.last_verified_at = verified
        db.session.flush()
    return bool(changes) or paused_changed or verified_changed


def export_services(selection: Iterable[Service] | None = None, *, bom: bool = True) -> str:
    """The CSV text of ``selection`` (default: every service, by organisation and name)."""
    if selection is None:
        selection = db.session.scalars(services.services_query().options(
            selectinload(Service.places), selectinload(Service.organisation)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for service in selection:
        writer.writerow(write_row(service))
    return (BOM if bom else "") + out.getvalue()
