"""Building, validating and reading answers: types, visibility, drafts, workflow data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.formkit import build_form, get_definition, load_form_definitions

ALL_TYPES = """\
title: All types
fields:
  - {name: short, type: text, label: Short, min_length: 2, max_length: 5}
  - {name: long, type: textarea, label: Long, max_length: 10}
  - {name: count, type: number, label: Count, integer: true, min: 0, max: 10}
  - {name: weight, type: number, label: Weight, min: 0.5}
  - {name: when, type: date, label: When, min: "2020-01-01", max: today}
  - name: colour
    type: choice
    label: Colour
    choices: [{value: red, label: Red}, {value: blue, label: Blue}]
  - name: size
    type: choice
    widget: select
    label: Size
    choices: [{value: s, label: Small}, {value: l, label: Large}]
  - name: tags
    type: multichoice
    label: Tags
    choices: [{value: a, label: A}, {value: b, label: B}, {value: c, label: C}]
  - {name: ok, type: yesno, label: OK}
  - {name: phone, type: phone, label: Phone}
"""

CHAIN = """\
title: Chain
fields:
  - {name: a, type: yesno, label: A}
  - {name: b, type: yesno, label: B, required: true, show_if: {field: a, equals: true}}
  - {name: c, type: text, label: C, required: true, show_if: {field: b, equals: true}}
  - {name: n, type: number, label: N}
  - {name: big, type: text, label: Big, show_if: {field: n, not_equals: 0}}
  - name: m
    type: multichoice
    label: M
    choices: [{value: x, label: X}, {value: y, label: Y}]
  - {name: has_y, type: text, label: Has y, required: true, show_if: {field: m, contains: y}}
"""


@pytest.fixture
def defs(tmp_path):
    (tmp_path / "all_types.yaml").write_text(ALL_TYPES)
    (tmp_path / "chain.yaml").write_text(CHAIN)
    return load_form_definitions(tmp_path)


TOMORROW = (date.today() + timedelta(days=1)).isoformat()

GOOD = [
    ("short", "  ab ", "ab"),
    ("long", "x" * 10, "x" * 10),
    ("count", " 10 ", 10),
    ("count", "0", 0),
    ("weight", "2,5", 2.5),
    ("weight", "3", 3),
    ("when", "2021-02-28", "2021-02-28"),
    ("when", date.today().isoformat(), date.today().isoformat()),
    ("colour", "blue", "blue"),
    ("size", "l", "l"),
    ("tags", ["c", "a"], ["a", "c"]),
    ("ok", "yes", True),
    ("ok", "no", False),
    ("phone", "+58 414-123.4567", "+584141234567"),
    ("phone", "0058 (414) 1234567", "+584141234567"),
]

BAD = [
    ("short", "a", "Use at least 2 characters."),
    ("short", "abcdef", "Use at most 5 characters (you used 6)."),
    ("long", "x" * 11, "Use at most 10 characters"),
    ("count", "7.5", "Enter a whole number"),
    ("count", "abc", "Enter a whole number"),
    ("count", "٣", "Enter a whole number"),
    ("count", "11", "Enter a number from 0 to 10."),
    ("count", "-1", "Enter a number from 0 to 10."),
    ("weight", "0.1", "Enter a number of at least 0.5."),
    ("weight", "nan", "Enter a number, like 12 or 3.5."),
    ("weight", "1e3", "Enter a number, like 12 or 3.5."),
    ("when", "2021-02-30", "Enter a real date as YYYY-MM-DD."),
    ("when", "31/01/2021", "Enter a real date as YYYY-MM-DD."),
    ("when", "2019-12-31", "Enter a date on or after 2020-01-01."),
    ("when", TOMORROW, "Enter a date on or before"),
    ("colour", "green", "Choose one of the options shown."),
    ("size", "xl", "Choose one of the options shown."),
    ("tags", ["a", "z"], "Choose only from the options shown."),
    ("ok", "maybe", "Answer yes or no."),
    ("phone", "12345", "Enter a phone number with its country code"),
    ("phone", "+0123456789", "Enter a phone number with its country code"),
    ("phone", "call me", "Enter a phone number with its country code"),
]


@pytest.mark.parametrize(("name", "posted", "clean"), GOOD)
def test_good_values_give_clean_answers(post, defs, name, posted, clean):
    bound = post(defs["all_types"], {name: posted})
    assert bound.validate(), bound.errors
    answers = bound.answers()
    assert answers[name] == clean
    assert type(answers[name]) is type(clean)


@pytest.mark.parametrize(("name", "posted", "message"), BAD)
def test_bad_values_put_an_error_on_that_field(post, defs, name, posted, message):
    bound = post(defs["all_types"], {name: posted})
    assert not bound.validate()
    assert list(bound.errors) == [name]
    assert bound.errors[name][0].startswith(message)


def test_empty_optional_fields_are_none(post, defs):
    bound = post(defs["all_types"], {})
    assert bound.validate(), bound.errors
    answers = bound.answers()
    assert answers.pop("tags") == []
    assert set(answers.values()) == {None}


def test_required_applies_only_to_visible_fields(post):
    bound = post("demo_consent", {"consent_given": "no"})
    assert bound.validate(), bound.errors
    assert bound.answers() == {"consent_given": False, "consent_notes": None}

    bound = post("demo_consent", {"consent_given": "yes"})
    assert not bound.validate()
    assert bound.errors == {"consent_by": ["Please answer this question."]}

    bound = post("demo_consent", {})
    assert bound.errors == {} and not bound.validate()
    assert list(bound.errors) == ["consent_given"]


def test_hidden_answers_are_dropped_even_if_posted(post):
    posted = {"consent_given": "no", "consent_by": "not-even-a-choice"}
    bound = post("demo_consent", posted, shown=["consent_given", "consent_by", "consent_notes"])
    assert bound.validate(), bound.errors
    assert "consent_by" not in bound.answers()
    assert "consent_by" not in bound.raw_data()
    assert [f.name for f in bound.visible_fields()] == ["consent_given", "consent_notes"]


def test_server_rejects_values_outside_the_choices(post):
    bound = post("demo_consent", {"consent_given": "yes", "consent_by": "anyone"})
    assert not bound.validate()
    assert bound.errors["consent_by"] == ["Choose one of the options shown."]
    bound = post("demo_needs", {"services": ["health", "spaceship"], "urgency": "urgent", "reason": "x"})
    assert not bound.validate()
    assert list(bound.errors) == ["services"]


def test_chained_conditions_follow_visibility(post, defs):
    chain = defs["chain"]
    # b is hidden (a is no), so c is hidden even though the posted b says yes.
    bound = post(chain, {"a": "no", "b": "yes"})
    assert bound.validate(), bound.errors
    assert set(bound.answers()) == {"a", "n", "m"}
    bound = post(chain, {"a": "yes", "b": "yes"})
    assert not bound.validate()
    assert bound.errors == {"c": ["Please answer this question."]}
    # not_equals needs an answer; contains looks into a multichoice.
    assert post(chain, {"n": "0"}).is_visible("big") is False
    assert post(chain, {"n": ""}).is_visible("big") is False
    assert post(chain, {"n": "3"}).is_visible("big") is True
    assert post(chain, {"m": ["x"]}).is_visible("has_y") is False
    assert post(chain, {"m": ["x", "y"]}).is_visible("has_y") is True


def test_newly_revealed_fields_are_shown_without_errors(post):
    bound = post("demo_consent", {"consent_given": "yes"}, shown=["consent_given", "consent_notes"])
    assert not bound.validate()
    assert bound.newly_shown == ["consent_by"]
    assert bound.errors == {}
    assert bound.shown_value() == "consent_given,consent_by,consent_notes"
    items = {item.field.name: item for item in bound.render_items()}
    assert items["consent_by"].new and not items["consent_by"].hidden
    # The next submission shows the question was on screen: now it is validated.
    bound = post("demo_consent", {"consent_given": "yes"}, shown=bound.shown_value().split(","))
    assert not bound.validate() and bound.newly_shown == []
    assert bound.errors == {"consent_by": ["Please answer this question."]}
    bound = post(
        "demo_consent",
        {"consent_given": "yes", "consent_by": "person"},
        shown=["consent_given", "consent_by", "consent_notes"],
    )
    assert bound.validate(), bound.errors


def test_unconditional_fields_are_validated_whatever_the_client_says_it_showed(post):
    bound = post("demo_person", {"age": "abc", "case_code": "C-1", "location": "capital"}, shown=[])
    assert not bound.validate()
    assert list(bound.errors) == ["age"]


def test_workflow_data_leaves_out_personal_fields_not_exposed(post):
    posted = {
        "case_code": "CP-0042",
        "full_name": "Ana Pérez",
        "age": "12",
        "sex": "female",
        "phone": "+58 414 1234567",
        "location": "capital",
    }
    bound = post("demo_person", posted)
    assert bound.validate(), bound.errors
    assert bound.answers()["full_name"] == "Ana Pérez"
    assert bound.workflow_data() == {
        "case_code": "CP-0042",
        "age": 12,
        "sex": "female",
        "location": "capital",
    }


def test_answers_need_a_successful_validation(post):
    bound = post("demo_review", {"confirm": "maybe"})
    with pytest.raises(RuntimeError):
        bound.answers()
    assert not bound.validate()
    with pytest.raises(RuntimeError):
        bound.workflow_data()


GARBAGE = {
    "case_code": "\x00" * 5 + "x" * 100_000,
    "full_name": ["a", "b", "c"],
    "age": "¹²³ ٣",
    "sex": ["", "\ud800"],
    "phone": "+" * 50,
    "location": "<script>alert(1)</script>",
    "unknown": "ignored",
}


def test_draft_raw_data_never_raises_on_garbage(post, defs):
    bound = post("demo_person", GARBAGE)
    raw = bound.raw_data()
    assert set(raw) == {"case_code", "full_name", "age", "sex", "phone", "location"}
    assert raw["case_code"] == "x" * 20_000
    assert raw["full_name"] == "a" and raw["location"] == "<script>alert(1)</script>"
    assert not bound.validate()
    bound = post(defs["all_types"], {"tags": ["z"] * 1000 + ["a"], "when": "9999-99-99", "ok": ["yes", "no"]})
    raw = bound.raw_data()
    assert len(raw["tags"]) == 200 and raw["when"] == "9999-99-99" and raw["ok"] == "yes"
    assert all(isinstance(v, (str, list)) for v in raw.values())


def test_prefill_accepts_clean_answers_drafts_and_garbage(formkit_app, defs):
    with formkit_app.test_request_context("/"):
        saved = {"age": 30, "sex": "male", "location": "coast", "case_code": "C-9"}
        bound = build_form(get_definition("demo_person"), data=saved)
        assert not bound.submitted and bound.raw_data()["age"] == "30"
        garbage = {
            "count": {"a": 1},
            "when": 12345,
            "tags": "a",
            "ok": True,
            "colour": None,
            "weight": [1.5],
            "short": b"bytes",
        }
        raw = build_form(defs["all_types"], data=garbage).raw_data()
        assert raw["count"] == "{'a': 1}" and raw["ok"] == "yes" and raw["tags"] == ["a"]
        assert raw["weight"] == "1.5" and raw["colour"] == ""
        consent = build_form(get_definition("demo_consent"), data={"consent_given": True})
        assert consent.is_visible("consent_by")


def test_posted_request_form_is_used_automatically(formkit_app):
    with formkit_app.test_request_context("/", method="POST", data={"confirm": "yes"}):
        bound = build_form(get_definition("demo_review"), data={"confirm": False})
        assert bound.submitted
        assert bound.raw_data()["confirm"] == "yes"
        assert not bound.validate()  # no CSRF token
        assert "csrf_token" in bound.errors


def test_flask_form_validate_on_submit_uses_visibility(post):
    bound = post("demo_consent", {"consent_given": "no"})
    assert bound.form.validate_on_submit()
    assert bound.validate_on_submit()
