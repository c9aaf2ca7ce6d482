"""Directory services: the rules every write checks, state changes, filters and places."""

from __future__ import annotations

import pytest

from app.directory import services
from app.directory.demo import PLACES_FILE
from app.directory.models import PlaceLevel
from app.directory.places import PlacesFileError, get_place, lineage_codes, load_places
from app.extensions import db
from tests import factories
from tests.directory.conftest import CARACAS, MARACAIBO, POLAND, PRZEMYSL, ZULIA, make_service

pytestmark = pytest.mark.usefixtures("places")


def test_places_know_their_ancestors_and_label():
    maracaibo = get_place(MARACAIBO)
    assert maracaibo.level == PlaceLevel.municipality and maracaibo.label == "Maracaibo, Zulia, Venezuela"
    assert [p.code for p in maracaibo.ancestors] == [ZULIA, "ve"]
    assert lineage_codes(MARACAIBO) == [MARACAIBO, ZULIA, "ve"]
    assert lineage_codes("xx/unknown/town") == ["xx/unknown/town", "xx/unknown", "xx"]
    assert lineage_codes(None) == []


def test_loading_places_again_changes_nothing_and_renames_are_applied(tmp_path):
    again = load_places(PLACES_FILE)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 18)
    renamed = tmp_path / "places.yaml"
    renamed.write_text(PLACES_FILE.read_text(encoding="utf-8").replace("name: Poland", "name: Polska"),
                       encoding="utf-8")
    assert load_places(renamed).updated == 1
    assert get_place(PRZEMYSL).label == "Przemyśl, Podkarpackie, Polska"


@pytest.mark.parametrize("text,problem", [
    ("countries: {}", "top: expected a mapping with a list 'countries'"),
    ("countries: [{code: ve, name: V}, {code: ve, name: W}]", "countries[1].code: ve appears twice"),
    ("countries: [{code: ve}]", "countries[0].name: missing"),
    ("countries: [{code: ve, name: V, regions: [{code: 'a/b', name: X}]}]",
     "countries[0].regions[0].code: 'a/b' is not a slug (a-z, 0-9, '-', '_')"),
    ("countries: [", "places.yaml"),
])
def test_a_bad_places_file_is_refused(tmp_path, text, problem):
    path = tmp_path / "places.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlacesFileError) as caught:
        load_places(path)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_create_checks_every_rule_at_once():
    with pytest.raises(services.InvalidService) as caught:
        services.create_service(factories.organisation(), name=" ", service_type="spa", sectors=["XX"],
                                places=[], min_age=30, max_age=20, capacity=-1, sms_phone="+0123",
                                sms_locale="de", languages=["tlh"])
    assert caught.value.errors == {
        "name": "required", "service_type": "unknown service type (spa)", "sectors": "unknown: XX",
        "languages": "unknown: tlh", "places": "choose at least one place served",
        "max_age": "must not be below the minimum age", "capacity": "must be 0 or more",
        "sms_phone": "not a valid E.164 number (e.g. +584141234567)",
        "sms_locale": "unknown SMS language (de); use en, es, pl, uk"}


def test_update_checks_the_result_and_names_are_unique_per_organisation():
    service = make_service(name="Clinic", min_age=10)
    with pytest.raises(services.InvalidService) as caught:
        services.update_service(service, max_age=5)
    assert caught.value.errors == {"max_age": "must not be below the minimum age"}
    other = make_service(service.organisation, name="Other")
    with pytest.raises(services.InvalidService) as caught:
        services.update_service(other, name="Clinic")
    assert caught.value.errors == {"name": "this organisation already lists a service with this name"}
    make_service(name="Clinic")  # the same name in another organisation is fine
    with pytest.raises(TypeError):
        services.update_service(service, colour="red")


def test_focal_points_are_providers_of_the_same_organisation():
    service = make_service()
    provider = factories.user("provider", organisation=service.organisation)
    caseworker = factories.user("caseworker", organisation=service.organisation)
    stranger = factories.user("provider")
    for wrong in (caseworker, stranger):
        with pytest.raises(services.InvalidService) as caught:
            services.update_service(service, focal_users=[wrong])
        assert list(caught.value.errors) == ["focal_users"]
    services.update_service(service, focal_users=[provider])
    assert service.focal_users == [provider] and services.organisation_providers(service.organisation) == [provider]


def test_pause_resume_verify_are_audited():
    from sqlalchemy import select

    from app.audit.models import AuditEvent

    coordinator = factories.user("coordinator")
    service = make_service()
    services.pause_service(service, by=coordinator)
    assert service.paused and not service.available
    services.resume_service(service, by=coordinator)
    services.verify_service(service, by=coordinator)
    assert not service.paused and service.available and service.last_verified_at is not None
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.user_id == coordinator.id)).all()
    assert actions == ["directory.service_paused", "directory.service_resumed", "directory.service_verified"]


def test_filters():
    org = factories.organisation("Fundación Filtro")
    make_service(org, name="Local clinic", places=[MARACAIBO], statuses=["refugee"])
    make_service(name="Regional shelter", service_type="safe_shelter", places=[ZULIA], sectors=["GBV"])
    make_service(name="National line", service_type="reporting_channel", places=["ve"], sectors=["CT"])
    make_service(name="Caracas clinic", places=[CARACAS], sectors=["CP"])
    make_service(name="Polish clinic", places=[POLAND])
    db.session.flush()

    def names(**filters):
        return [s.name for s in db.session.scalars(services.services_query(**filters))]

    assert sorted(names(place_code=MARACAIBO)) == ["Local clinic", "National line", "Regional shelter"]
    assert sorted(names(place_code=ZULIA)) == ["Local clinic", "National line", "Regional shelter"]
    assert sorted(names(place_code="ve")) == ["Caracas clinic", "Local clinic", "National line", "Regional shelter"]
    assert names(service_type="safe_shelter") == ["Regional shelter"]
    assert names(sector="CT") == ["National line"]
    assert "Local clinic" in names(status="refugee") and "Local clinic" not in names(status="migrant")
    assert len(names(status="migrant")) == 4
    assert names(organisation_id=org.id) == ["Local clinic"] == names(text="filtro")
    assert names(text="POLISH") == ["Polish clinic"]
    page = services.list_services(page=2, per_page=2)
    assert page.total == 5 and len(page.items) == 2 and page.pages == 3
