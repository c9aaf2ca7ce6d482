"""The demo directory: imports cleanly, is large and varied enough, and has its documented gaps."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from app.auth.models import Organisation, Role, User
from app.directory.csv_io import export_services
from app.directory.demo import DEMO_DIR, seed_demo_directory
from app.directory.matching import GAP_NONE_ELIGIBLE, GAP_NONE_LISTED, Person, match_services
from app.directory.models import Service
from app.extensions import db


@pytest.fixture
def seeded(app):
    """The demo directory, seeded as ``seed-demo`` does it: in an app context, no request."""
    with app.app_context():
        summary = seed_demo_directory()
        db.session.commit()
    return summary


def test_seeding_twice_changes_nothing(app, seeded):
    assert "72 services created" in seeded and "30 focal point users" in seeded
    with app.app_context():
        before = export_services(), db.session.scalar(select(func.count(User.id)))
        again = seed_demo_directory()
        db.session.commit()
        assert again == ("directory: 0 places, 0 services created, 0 updated, 0 organisations, "
                         "0 focal point users")
        assert (export_services(), db.session.scalar(select(func.count(User.id)))) == before


def test_the_demo_is_big_and_varied(app, seeded):
    with app.app_context():
        services = db.session.scalars(select(Service)).all()
        organisations = {s.organisation for s in services}
        assert len(organisations) >= 25 and len(services) >= 60
        assert {"es", "pl", "uk", "en"} <= {s.sms_locale for s in services}
        assert {"es", "pl", "uk", "en"} <= {code for s in services for code in s.languages}
        assert {"CP", "GBV", "CT"} <= {code for s in services for code in s.sectors}
        assert {s.places[0].code.split("/")[0] for s in services} == {"ve", "pl"}
        assert any(s.paused for s in services) and any(not s.accepting_referrals for s in services)
        assert any(s.capacity == 0 for s in services)
        assert any(s.max_age == 17 for s in services) and any(s.sexes == ["female"] for s in services)
        assert all(s.sms_phone.startswith(("+58412000", "+48500000")) for s in services)


def test_every_service_has_a_provider_focal_point_in_its_language(app, seeded):
    with app.app_context():
        for service in db.session.scalars(select(Service)):
            [focal] = service.focal_users
            assert focal.role == Role.provider and focal.organisation_id == service.organisation_id
        org = db.session.scalar(select(Organisation).where(Organisation.name == "Fundacja Soniashnyk"))
        user = db.session.scalar(select(User).where(User.organisation_id == org.id))
        assert (user.email, user.locale) == ("provider.soniashnyk@demo.test", "uk")
        emails = set(db.session.scalars(select(User.email)))
        assert {"provider.casasegura@demo.test", "provider.brazosabiertos@demo.test",
                "provider.mostnadziei@demo.test", "provider.legalaid@demo.test"} <= emails


def test_focal_points_already_present_are_kept(app):
    with app.app_context():
        from app.auth import services as auth

        org = auth.create_organisation("Fundación Brazos Abiertos", "FBA", "es")
        existing = auth.create_user(email="someone@fba.test", name="Someone", password="x" * 12,
                                    role=Role.provider, organisation=org)
        seed_demo_directory()
        services = db.session.scalars(select(Service).where(Service.organisation_id == org.id)).all()
        assert services and all(s.focal_users == [existing] for s in services)
        assert db.session.scalar(select(func.count(User.id)).where(User.organisation_id == org.id)) == 1
        db.session.rollback()


#: (needs, person, sector, expected gap reason) — the gaps README.md documents.
DOCUMENTED_GAPS = [
    ("clinical_management_of_rape", Person(age=25, sex="female", place_code="ve/tachira/san-cristobal"),
     "GBV", GAP_NONE_LISTED),
    ("interpretation", Person(age=40, languages=["ar"], place_code="pl/podkarpackie/przemysl"), None,
     GAP_NONE_LISTED),
    ("safe_shelter", Person(age=35, sex="male", place_code="pl/lubelskie/lublin"), None, GAP_NONE_ELIGIBLE),
    ("legal_aid", Person(age=30, place_code="ve/bolivar/ciudad-guayana"), None, GAP_NONE_ELIGIBLE),
    ("safe_shelter", Person(age=30, sex="female", place_code="ve/bolivar/ciudad-guayana"), "GBV",
     GAP_NONE_ELIGIBLE),
]


@pytest.mark.parametrize("need,person,sector,reason", DOCUMENTED_GAPS)
def test_the_documented_gaps_are_gaps(app, seeded, need, person, sector, reason):
    with app.test_request_context():
        result = match_services([need], person, sector)
        assert result.matches == [] and result.gap_reasons == {need: reason}


def test_the_gaps_are_documented_and_their_neighbours_are_served(app, seeded):
    readme = (DEMO_DIR / "README.md").read_text(encoding="utf-8")
    for phrase in ("San Cristóbal", "Przemyśl", "Lublin", "Ciudad Guayana"):
        assert phrase in readme
    with app.test_request_context():
        served = [
            ("clinical_management_of_rape", Person(age=25, sex="female", place_code="ve/zulia/maracaibo")),
            ("interpretation", Person(place_code="pl/lubelskie/lublin")),
            ("safe_shelter", Person(age=35, sex="female", place_code="pl/lubelskie/lublin")),
            ("safe_shelter", Person(age=35, sex="male", place_code="pl/mazowieckie/warszawa")),
            ("safe_shelter", Person(age=10, sex="male", place_code="pl/lubelskie/lublin")),
        ]
        for need, person in served:
            assert match_services([need], person).matches, (need, person)


def test_languages_rank_within_a_city(app, seeded):
    with app.test_request_context():
        result = match_services(["psychosocial_support"], Person(languages=["uk"],
                                                                 place_code="pl/podkarpackie/przemysl"))
        ranked = [m.service.name for m in result.matches]
        assert ranked[0] in ("Psychosocial support in Ukrainian", "Wsparcie psychospołeczne Przemyśl")
        assert Counter(m.service.service_type for m in result.matches) == {"psychosocial_support": len(ranked)}
