"""Coordinator pages: list, create, edit, pause/resume/verify, import, export, gaps; access."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from app.directory import services
from app.directory.demo import PLACES_FILE
from app.directory.matching import record_gaps
from app.directory.models import Service
from app.directory.places import load_places
from app.extensions import db
from tests import factories
from tests.directory.conftest import MARACAIBO, make_service
from tests.directory.test_csv import GOOD, table


@pytest.fixture
def directory(app):
    """Places and two services (ids 1 and 2 of one organisation with a provider user)."""
    with app.test_request_context():
        load_places(PLACES_FILE)
        org = factories.organisation("Fundación Uno")
        provider = factories.user("provider", organisation=org, email="focal@uno.test")
        make_service(org, name="Clinic Uno")
        shelter = make_service(org, name="Shelter Uno", service_type="safe_shelter", sexes=["female"])
        services.verify_service(shelter)
        db.session.commit()
        return {"org_id": org.id, "provider_id": provider.id}


def _service(app, name: str) -> Service:
    with app.app_context():
        service = db.session.scalar(select(Service).where(Service.name == name))
        db.session.expunge_all()
        return service


VALID = {"name": "Nueva clínica", "description": "", "service_type": "health", "sectors": ["GBV"],
         "places": [MARACAIBO, "ve/zulia"], "min_age": "", "max_age": "", "languages": ["es", "uk"],
         "opening_hours": "24h", "accepting_referrals": "y", "capacity": "3", "sms_phone": "+58 412-000 0999",
         "sms_locale": "es"}


def test_coordinator_lists_and_filters(app, client, login_as, directory):
    login_as("coordinator")
    page = client.get("/directory/").get_data(as_text=True)
    assert "Clinic Uno" in page and "Shelter Uno" in page and 'href="/directory/"' in page
    assert page.count("Never") == 1  # Clinic Uno was never verified; Shelter Uno shows its date
    page = client.get("/directory/?service_type=safe_shelter&place_code=ve/zulia").get_data(as_text=True)
    assert "Shelter Uno" in page and "Clinic Uno" not in page
    assert "No services match." in client.get("/directory/?place_code=pl").get_data(as_text=True)
    assert "No services match." in client.get("/directory/?sector=CT").get_data(as_text=True)


def test_the_list_pages(app, client, login_as, directory):
    with app.test_request_context():
        for n in range(30):
            make_service(name=f"Extra {n:02d}")
        db.session.commit()
    login_as("coordinator")
    first = client.get("/directory/?sector=GBV").get_data(as_text=True)
    assert "Page 1 of 2" in first and "page=2" in first and "sector=GBV" in first
    assert "Page 2 of 2" in client.get("/directory/?sector=GBV&page=2").get_data(as_text=True)


def test_coordinator_creates_a_service(app, client, login_as, directory):
    login_as("coordinator")
    assert client.get("/directory/services/new").status_code == 200
    response = client.post_form("/directory/services/new", {**VALID, "organisation_id": directory["org_id"]})
    assert response.status_code == 302, response.get_data(as_text=True)
    service = _service(app, "Nueva clínica")
    assert response.headers["Location"].endswith(f"/directory/services/{service.id}")
    assert (service.sms_phone, service.capacity, service.languages) == ("+584120000999", 3, ["es", "uk"])
    assert service.accepting_referrals and service.min_age is None


def test_validation_errors_are_shown_next_to_their_fields(app, client, login_as, directory):
    login_as("coordinator")
    response = client.post_form("/directory/services/new", {
        **VALID, "organisation_id": directory["org_id"], "name": "", "sms_phone": "0414 1234",
        "min_age": "18", "max_age": "9", "places": [], "capacity": "-2"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("name", "sms_phone", "max_age", "places", "capacity"):
        assert f'id="{field}-error"' in page, field
    assert re.search(r'id="sms_phone-error">Enter the number in international form', page)
    assert "The maximum age must not be below the minimum age." in page
    assert "Choose at least one place." in page
    assert 'aria-invalid="true"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Service.id))) == 2


def test_a_duplicate_name_is_refused_on_the_name_field(app, client, login_as, directory):
    login_as("coordinator")
    response = client.post_form("/directory/services/new", {**VALID, "organisation_id": directory["org_id"],
                                                            "name": "Clinic Uno"})
    assert response.status_code == 422
    assert re.search(r'id="name-error">this organisation already lists a service', response.get_data(as_text=True))


def test_coordinator_edits_every_field_and_chooses_focal_points(app, client, login_as, directory):
    login_as("coordinator")
    service = _service(app, "Clinic Uno")
    page = client.get(f"/directory/services/{service.id}").get_data(as_text=True)
    assert "focal@uno.test" in page and "Fundación Uno" in page
    response = client.post_form(f"/directory/services/{service.id}", {
        **VALID, "name": "Clinic Uno (renamed)", "sexes": ["female", "other"], "statuses": ["refugee"],
        "min_age": "12", "max_age": "17", "focal_user_ids": [str(directory["provider_id"])],
        "sms_locale": "uk", "accepting_referrals": ""})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        edited = db.session.get(Service, service.id)
        assert edited.name == "Clinic Uno (renamed)" and edited.sexes == ["female", "other"]
        assert (edited.min_age, edited.max_age, edited.sms_locale, edited.accepting_referrals) == (12, 17, "uk", False)
        assert [p.code for p in edited.places] == ["ve/zulia", MARACAIBO]
        assert [u.email for u in edited.focal_users] == ["focal@uno.test"]
        assert edited.organisation_id == directory["org_id"]


def test_focal_points_must_be_the_organisations_providers(app, client, login_as, directory):
    with app.app_context():
        stranger = factories.user("provider")
        db.session.commit()
        stranger_id = stranger.id
    login_as("coordinator")
    service = _service(app, "Clinic Uno")
    response = client.post_form(f"/directory/services/{service.id}", {**VALID, "focal_user_ids": [str(stranger_id)]})
    assert response.status_code == 422 and 'id="focal_user_ids-error"' in response.get_data(as_text=True)


def test_pause_resume_and_verify(app, client, login_as, directory):
    login_as("coordinator")
    service = _service(app, "Clinic Uno")
    assert service.last_verified_at is None
    assert client.post_form(f"/directory/services/{service.id}/pause").status_code == 302
    assert _service(app, "Clinic Uno").paused
    page = client.get(f"/directory/services/{service.id}").get_data(as_text=True)
    assert "Resume the service" in page and "Service paused" in page
    client.post_form(f"/directory/services/{service.id}/resume")
    assert not _service(app, "Clinic Uno").paused
    client.post_form(f"/directory/services/{service.id}/verify")
    assert _service(app, "Clinic Uno").last_verified_at is not None
    assert client.post_form("/directory/services/999/verify").status_code == 404


def test_import_shows_every_row_error_or_the_count(app, client, login_as, directory):
    login_as("coordinator")
    assert client.get("/directory/import").status_code == 200
    bad = table(GOOD, {"service_name": "B", "sms_phone": "12"}, {"service_name": "C", "service_areas": "xx"})
    response = client.post_form("/directory/import", {"file": (io.BytesIO(bad.encode()), "d.csv")},
                                content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "2 problems found; nothing was imported." in page
    assert "<li>row 3, sms_phone: not a valid E.164 number" in page
    assert "<li>row 4, service_areas: unknown place codes: xx</li>" in page
    garbage = client.post_form("/directory/import", {"file": (io.BytesIO(b"\x00\x01PK"), "d.xlsx")},
                               content_type="multipart/form-data")
    assert garbage.status_code == 422 and "This is not a CSV text file." in garbage.get_data(as_text=True)
    missing = client.post_form("/directory/import", {})
    assert missing.status_code == 422 and 'id="file-error"' in missing.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Service.id))) == 2
    good = table(GOOD, {"service_name": "B"})
    response = client.post_form("/directory/import", {"file": (io.BytesIO(good.encode()), "d.csv")},
                                content_type="multipart/form-data", follow_redirects=True)
    assert "2 services imported or updated, 0 unchanged." in response.get_data(as_text=True)


def test_export_downloads_the_csv(app, client, login_as, directory):
    login_as("coordinator")
    response = client.get("/directory/export.csv")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeffservice_id,") and "Clinic Uno" in text and "Shelter Uno" in text
    filtered = client.get("/directory/export.csv?service_type=health").get_data(as_text=True)
    assert "Clinic Uno" in filtered and "Shelter Uno" not in filtered


def test_gaps_page_counts_by_type_and_place(app, client, login_as, directory):
    with app.test_request_context():
        record_gaps(None, ["interpretation", "legal_aid"], MARACAIBO, "GBV")
        record_gaps(None, ["interpretation"], MARACAIBO, "GBV")
        record_gaps(None, ["safe_shelter"], None, None)
        db.session.commit()
    login_as("coordinator")
    page = client.get("/directory/gaps").get_data(as_text=True)
    row = re.search(r"<td>Interpretation</td>\s*<td>([^<]+)</td>\s*<td>(\d+)</td>", page)
    assert row and row.groups() == ("Maracaibo, Zulia, Venezuela", "2")
    assert "Legal aid and access to justice" in page and "Unknown place" in page


def test_admin_may_use_the_directory(app, client, login_as, directory):
    login_as("admin")
    assert client.get("/directory/").status_code == 200


@pytest.mark.parametrize("role", ["caseworker", "provider"])
def test_caseworkers_and_providers_are_refused(app, client, login_as, directory, role):
    login_as(role)
    assert 'href="/directory/"' not in client.get("/home").get_data(as_text=True)
    for url in ("/directory/", "/directory/services/new", "/directory/services/1", "/directory/import",
                "/directory/export.csv", "/directory/gaps"):
        assert client.get(url).status_code == 403, url
    for url in ("/directory/services/1/pause", "/directory/services/1/resume", "/directory/services/1/verify",
                "/directory/services/1", "/directory/import"):
        assert client.post_form(url, {}).status_code == 403, url
    assert not _service(app, "Clinic Uno").paused
