"""CSV import and export: every row checked first, all-or-nothing, clear errors, round trip."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.auth.models import Organisation
from app.directory.csv_io import MAX_BYTES, CsvImportError, export_services, import_services
from app.directory.csv_rows import COLUMNS
from app.directory.models import Service
from app.extensions import db
from tests.directory.conftest import MARACAIBO, make_service

pytestmark = pytest.mark.usefixtures("places")

GOOD = {
    "service_id": "", "organization_name": "Fundación Prueba", "organization_acronym": "FP",
    "service_name": "Clínica", "service_description": "Atención primaria", "service_type": "health",
    "sectors": "GBV;CP", "service_areas": "ve/zulia/maracaibo;ve/tachira", "eligibility_min_age": "0",
    "eligibility_max_age": "17", "eligibility_sexes": "", "eligibility_statuses": "migrant; refugee",
    "languages": "es;en", "opening_hours": "lun-vie 8-16", "accepting_referrals": "yes", "capacity": "4",
    "sms_phone": "+58 412 000 0001", "sms_language": "es", "status": "active", "last_verified": "2026-10-01",
}


def table(*rows: dict, columns=COLUMNS, delimiter=",", newline="\n") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, lineterminator=newline,
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**GOOD, **row})
    return out.getvalue()


def errors_of(data) -> list[str]:
    with pytest.raises(CsvImportError) as caught:
        import_services(data)
    db.session.rollback()
    return caught.value.errors


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def test_a_good_file_creates_organisations_and_services():
    summary = import_services(table(GOOD, {"service_name": "Refugio", "service_type": "safe_shelter",
                                           "eligibility_min_age": "", "eligibility_max_age": "",
                                           "eligibility_sexes": "female", "capacity": "",
                                           "status": "paused", "last_verified": "",
                                           "accepting_referrals": "no", "sms_phone": ""}))
    db.session.commit()
    assert (summary.created, summary.updated, summary.organisations_created) == (2, 0, 1)
    assert str(summary) == "2 services imported or updated, 0 unchanged."
    org = db.session.scalar(select(Organisation).where(Organisation.name == "Fundación Prueba"))
    assert (org.acronym, org.locale) == ("FP", "es")
    clinic, shelter = db.session.scalars(select(Service).order_by(Service.name)).all()
    assert [p.code for p in clinic.places] == ["ve/tachira", MARACAIBO]
    assert (clinic.sectors, clinic.statuses, clinic.languages) == (["GBV", "CP"], ["migrant", "refugee"], ["es", "en"])
    assert (clinic.min_age, clinic.max_age, clinic.capacity, clinic.sms_phone) == (0, 17, 4, "+584120000001")
    assert clinic.last_verified_at == datetime(2026, 10, 1, tzinfo=UTC) and not clinic.paused
    assert (shelter.paused, shelter.accepting_referrals) == (True, False)
    assert shelter.capacity is None and shelter.sms_phone is None
    assert shelter.sexes == ["female"] and shelter.last_verified_at is None and shelter.min_age is None


def test_a_bad_file_reports_every_row_error_and_writes_nothing():
    make_service(name="Existing")
    db.session.commit()
    before = (count(Service), count(Organisation))
    errors = errors_of(table(
        {"service_areas": "ve/nowhere;ve/zulia", "sms_language": "de", "eligibility_sexes": "female;robot"},
        {"service_name": "Two", "sms_phone": "0414-123", "service_type": "massage", "sectors": ""},
        {"service_name": "Three", "eligibility_min_age": "18", "eligibility_max_age": "9", "capacity": "-1",
         "accepting_referrals": "maybe", "last_verified": "31/12/2026", "status": "closed"},
        {"service_name": "", "organization_name": "", "languages": "es;xx", "eligibility_statuses": "tourist"},
        {"service_name": "Five", "service_id": "99999", "eligibility_min_age": "ten"},
        {"service_name": "Six", "eligibility_max_age": "200"},
    ))
    assert errors == [
        "row 2, service_areas: unknown place codes: ve/nowhere",
        "row 2, eligibility_sexes: unknown robot; use female, male, other",
        "row 2, sms_language: unknown SMS language (de); use en, es, pl, uk",
        "row 3, service_type: unknown service type massage; use " + ", ".join(
            ["psychosocial_support", "mental_health", "health", "clinical_management_of_rape", "safe_shelter",
             "legal_aid", "reporting_channel", "family_tracing", "case_management", "livelihoods",
             "cash_assistance", "education", "non_food_items", "interpretation"]),
        "row 3, sectors: choose at least one sector",
        "row 3, sms_phone: not a valid E.164 number (e.g. +584141234567)",
        "row 4, eligibility_max_age: must not be below the minimum age",
        "row 4, accepting_referrals: write yes or no (maybe)",
        "row 4, capacity: must be 0 or more",
        "row 4, status: write active or paused (closed)",
        "row 4, last_verified: not a date like 2026-03-31 (31/12/2026)",
        "row 5, organization_name: required",
        "row 5, service_name: required",
        "row 5, eligibility_statuses: unknown tourist; use refugee, asylum_seeker, migrant, idp, host_community, "
        "stateless, returnee",
        "row 5, languages: unknown xx; use es, en, pl, uk, ru, pt, fr, ar",
        "row 6, service_id: no service has this id",
        "row 6, eligibility_min_age: not a whole number (ten)",
        "row 7, eligibility_max_age: must be between 0 and 120",
    ]
    assert (count(Service), count(Organisation)) == before


def test_rows_in_a_spreadsheet_count_from_the_header_and_skip_nothing_but_blank_rows():
    text = table(GOOD, {"service_name": "B", "sms_phone": "bad"})
    lines = text.splitlines()
    text = "\n".join([lines[0], lines[1], ",,,", "", lines[2]]) + "\n"
    assert errors_of(text) == ["row 5, sms_phone: not a valid E.164 number (e.g. +584141234567)"]


def test_bom_and_windows_line_endings_and_semicolons_are_read():
    data = ("\ufeff" + table(GOOD, {"service_name": "Dos"}, newline="\r\n")).encode("utf-8")
    assert import_services(data).created == 2
    data = table({"service_name": "Tres"}, delimiter=";").encode("utf-8-sig")
    assert import_services(data).created == 1
    assert db.session.get(Service, 3).sectors == ["GBV", "CP"]


@pytest.mark.parametrize("columns,message", [
    ([c for c in COLUMNS if c not in ("capacity", "sms_phone")], "Missing columns: capacity, sms_phone."),
    ([*COLUMNS, "notes"], "Unknown columns: notes."),
    ([*COLUMNS, "capacity"], "Columns named more than once: capacity."),
])
def test_missing_extra_or_doubled_columns_are_named(columns, message):
    assert errors_of(table(GOOD, columns=columns)) == [message]


def test_a_row_with_too_few_or_too_many_cells():
    header, row = table(GOOD).splitlines()
    assert errors_of(f"{header}\n{row},extra\n{row.rsplit(',', 3)[0]}\n{row},\n") == [
        "row 2: 21 cells, but the header has 20 columns", "row 3: 17 cells, but the header has 20 columns"]


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",  # an .xlsx is a zip file
    "service_id,organization_name\nFundación".encode("latin-1"),
    "\ufeffservice_id".encode("utf-16"),
    bytes(range(256)),
])
def test_binary_or_non_utf8_uploads_are_refused_clearly(data):
    [message] = errors_of(data)
    assert message.startswith("This is not a CSV text file.") and "CSV UTF-8" in message


def test_an_oversized_file_is_refused_before_reading_it():
    assert errors_of(b"x" * (MAX_BYTES + 1)) == ["The file is larger than 10 MB."]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", "  \r\n\n", "\ufeff"])
def test_an_empty_file_is_refused(data):
    assert errors_of(data) == ["The file is empty."]


def test_a_header_only_file_changes_nothing():
    summary = import_services(",".join(COLUMNS) + "\r\n")
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 0)


def test_rows_update_by_id_or_by_organisation_and_name():
    import_services(table(GOOD))
    db.session.commit()
    service = db.session.scalar(select(Service))
    summary = import_services(table({"organization_name": "fundación prueba", "capacity": "0"}))
    assert (summary.created, summary.updated) == (0, 1) and service.capacity == 0
    summary = import_services(table({"service_id": str(service.id), "service_name": "Clínica nueva"}))
    assert (summary.created, summary.updated) == (0, 1)
    assert service.name == "Clínica nueva" and service.capacity == 4 and count(Service) == 1


def test_conflicting_rows_are_errors():
    other = make_service(name="Elsewhere")
    db.session.commit()
    errors = errors_of(table(GOOD, {"service_name": "CLÍNICA"},
                             {"service_id": str(other.id), "service_name": "Elsewhere"},
                             {"service_id": str(other.id),
                                                             "organization_name": other.organisation.name}))
    assert errors == [
        "row 3, service_name: this organisation's service is also on row 2",
        f"row 4, organization_name: service {other.id} belongs to {other.organisation.name}",
        "row 5, service_id: also on row 4",
    ]


def test_export_then_import_changes_nothing():
    import_services(table(GOOD, {"service_name": "=HYPERLINK(\"http://x\")", "opening_hours": "-24h",
                                 "service_description": "Línea 1\r\nLínea 2, con coma; y punto y coma"},
                          {"organization_name": "Otra", "organization_acronym": "", "service_name": "B",
                           "status": "paused", "capacity": "", "sms_phone": "", "service_areas": "pl"}))
    service = make_service(name="Made on the web", languages=[], sectors=["CT"])
    service.last_verified_at = datetime(2026, 5, 6, 13, 45, tzinfo=UTC)
    db.session.commit()
    exported = export_services()
    assert exported.startswith("\ufeffservice_id,organization_name,")
    assert "'=HYPERLINK" in exported and "'-24h" in exported
    before = [(s.id, s.updated_at) for s in db.session.scalars(select(Service).order_by(Service.id))]
    summary = import_services(exported.encode("utf-8"))
    db.session.commit()
    assert (summary.created, summary.updated, summary.unchanged, summary.organisations_created) == (0, 0, 4, 0)
    assert [(s.id, s.updated_at) for s in db.session.scalars(select(Service).order_by(Service.id))] == before
    assert export_services() == exported
    names = {s.name for s in db.session.scalars(select(Service))}
    assert '=HYPERLINK("http://x")' in names
    assert service.last_verified_at == datetime(2026, 5, 6, 13, 45, tzinfo=UTC)
