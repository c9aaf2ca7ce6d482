"""The choice lists the directory gives formkit: registered, translated, read from the database."""

from __future__ import annotations

from app.directory import taxonomy
from app.directory.choices import SOURCES
from app.formkit.choices import registered_source_names


def test_sources_are_registered_at_start_up(app):
    assert set(SOURCES) <= registered_source_names()


def test_labels_are_plain_strings_in_the_request_language(app):
    with app.test_request_context(headers={"Accept-Language": "es"}):
        sexes = SOURCES["sexes"]()
        assert sexes[:3] == [("female", "Femenino"), ("male", "Masculino"), ("other", "Otro")]
        assert sexes[3] == ("not_disclosed", "Prefiere no decirlo")
        languages = dict(SOURCES["languages"]())
        assert (languages["es"], languages["uk"]) == ("Español", "Ucraniano")
        types = SOURCES["service_types"]()
        assert [code for code, _label in types] == list(taxonomy.SERVICE_TYPES)
        assert dict(types)["case_management"] == "Gestión de casos"
        assert all(type(label) is str for _code, label in types + sexes)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert dict(SOURCES["service_types"]())["legal_aid"] == "Legal aid and access to justice"
        assert dict(SOURCES["statuses"]())["asylum_seeker"] == "Asylum seeker"


def test_places_are_regions_and_municipalities_sorted_by_label(places):
    choices = SOURCES["places"]()
    assert ("ve/zulia/maracaibo", "Maracaibo, Zulia, Venezuela") in choices
    assert ("pl/podkarpackie/przemysl", "Przemyśl, Podkarpackie, Poland") in choices
    assert ("pl/podkarpackie", "Podkarpackie, Poland") in choices
    assert not any(code in ("ve", "pl") for code, _label in choices)
    labels = [label for _code, label in choices]
    assert labels == sorted(labels, key=str.casefold) and len(choices) == 16
