"""Matching: eligibility, place hierarchy, ranking, exclusions with reasons, sectors and gaps."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.directory.matching import (
    GAP_NONE_ELIGIBLE,
    GAP_NONE_LISTED,
    Person,
    match_for_task_data,
    match_services,
    matching_choices,
    record_gaps,
)
from app.directory.models import ServiceGap
from app.extensions import db
from tests.directory.conftest import CARACAS, MARACAIBO, POLAND, VENEZUELA, ZULIA, make_service

pytestmark = pytest.mark.usefixtures("places")


def _names(items) -> list[str]:
    return [item.service.name for item in items]


def _excluded(result) -> dict[str, str]:
    return {e.service.name: e.reason for e in result.excluded}


def test_age_range_includes_and_excludes_with_reasons():
    make_service(name="Child unit", min_age=0, max_age=17)
    child = match_services(["health"], Person(age=12, place_code=MARACAIBO))
    assert _names(child.matches) == ["Child unit"]
    assert "Ages 0–17" in child.matches[0].reasons
    adult = match_services(["health"], Person(age=30, place_code=MARACAIBO))
    assert adult.matches == [] and _excluded(adult) == {"Child unit": "Only for ages 0–17"}
    assert adult.gaps == ["health"]
    unknown = match_services(["health"], Person(age=None, place_code=MARACAIBO))
    assert _names(unknown.matches) == ["Child unit"]


def test_open_ended_age_bounds():
    make_service(name="Adults", min_age=18)
    assert "Only for ages 18 and over" in _excluded(match_services(["health"], Person(age=17)))["Adults"]
    assert "Ages 18 and over" in match_services(["health"], Person(age=18)).matches[0].reasons


def test_sex_restriction():
    make_service(name="Women only", sexes=["female"])
    assert _names(match_services(["health"], Person(sex="female")).matches) == ["Women only"]
    assert _excluded(match_services(["health"], Person(sex="male"))) == {"Women only": "Only for: Female"}
    # Not disclosed or unknown excludes nobody; the restriction is still shown.
    for sex in (None, "not_disclosed"):
        result = match_services(["health"], Person(sex=sex))
        assert result.matches[0].reasons == ["For: Female", "Accepting new referrals"]


def test_status_restriction():
    make_service(name="Refugees", statuses=["refugee", "asylum_seeker"])
    make_service(name="Everyone")
    assert _names(match_services(["health"], Person(status="refugee")).matches) == ["Everyone", "Refugees"]
    migrant = match_services(["health"], Person(status="migrant"))
    assert _names(migrant.matches) == ["Everyone"]
    assert _excluded(migrant) == {"Refugees": "Only for: Refugee, Asylum seeker"}


def test_place_hierarchy_ranks_municipality_then_region_then_country():
    make_service(name="A national", places=[VENEZUELA])
    make_service(name="B regional", places=[ZULIA])
    make_service(name="C local", places=[MARACAIBO])
    make_service(name="D elsewhere", places=[CARACAS])
    make_service(name="E abroad", places=[POLAND])
    result = match_services(["health"], Person(place_code=MARACAIBO))
    assert _names(result.matches) == ["C local", "B regional", "A national"]
    assert [m.reasons[0] for m in result.matches] == [
        "Serves Maracaibo", "Serves all of Zulia", "Serves all of Venezuela"]
    assert _excluded(result) == {"D elsewhere": "Does not serve this place", "E abroad": "Does not serve this place"}
    # A person placed at region level is served by regional and national services only.
    regional = match_services(["health"], Person(place_code=ZULIA))
    assert _names(regional.matches) == ["B regional", "A national"]
    assert regional.matches[0].reasons[0] == "Serves Zulia"


def test_unknown_place_excludes_nobody():
    make_service(name="Caracas", places=[CARACAS])
    make_service(name="Poland", places=[POLAND])
    assert _names(match_services(["health"], Person()).matches) == ["Caracas", "Poland"]


def test_language_then_capacity_then_name_rank_within_the_same_place():
    make_service(name="Zeta speaks Ukrainian", languages=["uk", "pl"])
    make_service(name="Beta with room", languages=["es"], capacity=3)
    make_service(name="Alpha", languages=["es"])
    make_service(name="Gamma", languages=[])
    result = match_services(["health"], Person(languages=["uk", "en"], place_code=MARACAIBO))
    assert _names(result.matches) == ["Zeta speaks Ukrainian", "Beta with room", "Alpha", "Gamma"]
    assert "Speaks Ukrainian" in result.matches[0].reasons
    assert "3 places free" in result.matches[1].reasons
    assert result.matches[0].score > result.matches[1].score > result.matches[2].score


def test_closer_place_outranks_a_shared_language():
    make_service(name="Regional, Ukrainian", places=[ZULIA], languages=["uk"])
    make_service(name="Local, Spanish", places=[MARACAIBO], languages=["es"])
    result = match_services(["health"], Person(languages=["uk"], place_code=MARACAIBO))
    assert _names(result.matches) == ["Local, Spanish", "Regional, Ukrainian"]


def test_unavailable_services_are_excluded_with_reasons_and_other_types_ignored():
    make_service(name="Paused").paused = True
    make_service(name="Closed", accepting_referrals=False)
    make_service(name="Full", capacity=0)
    make_service(name="Open")
    make_service(name="Shelter", service_type="safe_shelter")
    db.session.flush()
    result = match_services(["health"], Person(place_code=MARACAIBO))
    assert _names(result.matches) == ["Open"]
    assert _excluded(result) == {"Closed": "Not accepting new referrals", "Full": "Full: no places free",
                                 "Paused": "Paused by the coordinator"}


def test_every_failed_rule_is_listed_and_nearby_exclusions_come_first():
    make_service(name="A far and paused", places=[CARACAS], min_age=18).paused = True
    make_service(name="Z nearby but full", capacity=0)
    db.session.flush()
    result = match_services(["health"], Person(age=10, place_code=MARACAIBO))
    assert _names(result.excluded) == ["Z nearby but full", "A far and paused"]
    assert result.excluded[1].reason == ("Paused by the coordinator; Does not serve this place; "
                                         "Only for ages 18 and over")


def test_sector_filter():
    make_service(name="Child protection only", sectors=["CP"])
    make_service(name="Both", sectors=["CP", "GBV"])
    gbv = match_services(["health"], Person(), sector="GBV")
    assert _names(gbv.matches) == ["Both"]
    assert _excluded(gbv) == {"Child protection only": "Does not work in Gender-based violence"}
    assert _names(match_services(["health"], Person()).matches) == ["Both", "Child protection only"]


def test_gaps_list_needed_types_without_a_match_in_order():
    make_service(name="Clinic", service_type="health")
    make_service(name="Paused interpreters", service_type="interpretation").paused = True
    make_service(name="Shelter in Caracas", service_type="safe_shelter", places=[CARACAS])
    db.session.flush()
    result = match_services(["legal_aid", "health", "interpretation", "safe_shelter", "health"],
                            Person(place_code=MARACAIBO))
    assert _names(result.matches) == ["Clinic"]
    assert result.gaps == ["legal_aid", "interpretation", "safe_shelter"]
    assert result.gap_reasons == {"legal_aid": GAP_NONE_LISTED, "interpretation": GAP_NONE_ELIGIBLE,
                                  "safe_shelter": GAP_NONE_LISTED}


def test_no_needs_no_result():
    make_service()
    result = match_services([], Person())
    assert result.matches == [] and result.excluded == [] and result.gaps == []


def _referral_id(app) -> int:
    from app.referrals import services as referrals
    from app.workflow import services as workflow
    from tests import factories

    workflow.publish_directory()
    return referrals.start_referral(factories.user("caseworker"), "demo_referral").id


def test_record_gaps_is_idempotent_per_referral_and_type(app):
    referral_id = _referral_id(app)
    first = record_gaps(referral_id, ["legal_aid", "interpretation"], MARACAIBO, "GBV",
                        {"interpretation": GAP_NONE_ELIGIBLE})
    assert [(g.service_type, g.reason) for g in first] == [("legal_aid", GAP_NONE_LISTED),
                                                           ("interpretation", GAP_NONE_ELIGIBLE)]
    again = record_gaps(referral_id, ["interpretation", "legal_aid", "safe_shelter"], MARACAIBO, "GBV")
    assert [g.service_type for g in again] == ["safe_shelter"]
    db.session.commit()
    rows = db.session.scalars(select(ServiceGap).order_by(ServiceGap.id)).all()
    assert [(g.referral_id, g.service_type, g.place_code, g.sector) for g in rows] == [
        (referral_id, "legal_aid", MARACAIBO, "GBV"), (referral_id, "interpretation", MARACAIBO, "GBV"),
        (referral_id, "safe_shelter", MARACAIBO, "GBV")]


def test_gaps_without_a_referral_are_always_recorded():
    record_gaps(None, ["health"], None, None)
    record_gaps(None, ["health"], None, None)
    db.session.commit()
    assert db.session.scalar(select(func.count(ServiceGap.id))) == 2


def test_task_data_helpers_read_the_workflow_keys():
    service = make_service(name="Local clinic", languages=["es"], min_age=18)
    make_service(name="Children", min_age=0, max_age=17)
    data = {"needs": ["health", "legal_aid"], "age": "34", "sex": "female", "languages": ["es"],
            "status": "migrant", "location": MARACAIBO, "sector": "GBV"}
    result = match_for_task_data(data, "GBV")
    assert _names(result.matches) == ["Local clinic"] and result.gaps == ["legal_aid"]
    assert matching_choices(data) == [
        (str(service.id), f"Local clinic — {service.organisation.name} "
                          "(Serves Maracaibo; Ages 18 and over; Speaks Spanish; Accepting new referrals)")]
    # Missing or malformed answers exclude nobody.
    loose = match_for_task_data({"needs": "health", "age": "unknown", "languages": None})
    assert _names(loose.matches) == ["Children", "Local clinic"]
