"""Loading and checking form definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import formkit
from app.formkit import FormDefinitionError, load_form_definitions, register_choice_source
from tests.formkit.conftest import make_app

DEMO_KEYS = {"demo_consent", "demo_person", "demo_needs", "demo_child", "demo_review"}


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(FormDefinitionError) as caught:
        load_form_definitions(directory)
    return caught.value.problems


def test_every_demo_definition_is_valid(forms_dir):
    definitions = load_form_definitions(forms_dir)
    assert DEMO_KEYS <= set(definitions)
    assert "lists" not in definitions
    person = definitions["demo_person"]
    age = person.field("age")
    assert (age.type, age.integer, age.min, age.max, age.personal, age.exposed) == (
        "number",
        True,
        0,
        120,
        True,
        True,
    )
    assert person.field("full_name").exposed is False
    assert person.field("case_code").exposed is True
    assert [c.value for c in person.field("sex").choices][:2] == ["female", "male"]
    consent_by = definitions["demo_consent"].field("consent_by")
    assert (consent_by.show_if.field, consent_by.show_if.op, consent_by.show_if.values) == (
        "consent_given",
        "equals",
        (True,),
    )


def test_init_app_stores_definitions_and_lookups(formkit_app):
    with formkit_app.app_context():
        assert DEMO_KEYS <= formkit.form_keys()
        assert formkit.get_definition("demo_needs").title == "Needs"
        assert formkit.get_definition("nope") is None
    assert "formkit" in formkit_app.blueprints


BROKEN = """\
title: Broken
fields:
  - name: a
    type: texty
    label: A
  - name: b
    type: text
    label: B
    lable: typo
    choices: [{value: x, label: X}]
  - name: b
    type: choice
    label: Duplicate
  - name: c
    type: choice
    label: C
    choices_from: nowhere
  - name: d
    type: number
    label: D
    min: 10
    max: 1
    show_if: {field: later, equals: 1}
  - name: later
    type: yesno
    label: L
    show_if: {field: d, equals: 5, in: [1]}
  - name: e
    type: multichoice
    label: E
    choices: [{value: x, label: X}, {value: x, label: Again}]
    show_if: {field: later, equals: maybe}
  - name: f
    type: text
    label: F
    show_if: {field: e, equals: x}
    expose: true
  - name: class
    type: date
    label: "   "
    min: tomorrow
  - name: g
    type: choice
    label: G
    choices: [{value: x, label: X}]
    choices_from: sexes
  - name: h
    type: text
    label: H
    show_if: {field: ghost, equals: x}
"""


def test_every_problem_is_reported_with_file_and_path(tmp_path):
    write(tmp_path, "broken.yaml", BROKEN)
    write(tmp_path, "syntax.yaml", "title: [unclosed\n")
    write(tmp_path, "nofields.yaml", "title: Empty\n")
    write(tmp_path, "lists.yaml", "sexes:\n  - {value: no, label: Nothing}\n")
    write(tmp_path, "old.yml", "title: x\n")
    problems = problems_of(tmp_path)
    expected = [
        "broken.yaml: fields[0].type: 'texty' is not one of",
        "broken.yaml: fields[1]: Additional properties are not allowed ('lable' was unexpected)",
        "broken.yaml: fields[1].choices: 'choices' does not apply to a text field",
        "broken.yaml: fields[2].name: duplicate field name 'b'",
        "broken.yaml: fields[2]: a choice field needs 'choices' or 'choices_from'",
        "broken.yaml: fields[3].choices_from: unknown choice list 'nowhere'",
        "broken.yaml: fields[4].min: min is greater than max",
        "broken.yaml: fields[4].show_if.field: field 'later' comes later in the form",
        "broken.yaml: fields[5].show_if: show_if needs exactly one of",
        "broken.yaml: fields[6].choices[1].value: duplicate value 'x'",
        "broken.yaml: fields[6].show_if.equals: 'maybe' is not true or false",
        "broken.yaml: fields[7].expose: 'expose' only applies to personal fields",
        "broken.yaml: fields[7].show_if.equals: use 'contains' with a multichoice field",
        "broken.yaml: fields[8].label: '   ' does not match",
        "broken.yaml: fields[8].name: 'class' is a reserved name",
        "broken.yaml: fields[8].min: min of a date field must be a date",
        "broken.yaml: fields[9]: use either 'choices' or 'choices_from', not both",
        "broken.yaml: fields[10].show_if.field: field 'ghost' does not exist",
        "syntax.yaml: line 2: not valid YAML",
        "nofields.yaml: (root): 'fields' is a required property",
        "lists.yaml: sexes[0].value: False is not of type 'string' (put it in quotes",
        "old.yml: (file): use the .yaml extension",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected)


def test_error_message_lists_all_problems(tmp_path):
    write(tmp_path, "one.yaml", "title: One\nfields: []\n")
    write(tmp_path, "two.yaml", "fields: [{name: a, type: text}]\n")
    with pytest.raises(FormDefinitionError) as caught:
        load_form_definitions(tmp_path)
    message = str(caught.value)
    assert message.startswith("3 problems in form definitions:")
    assert "one.yaml: fields: [] should be non-empty" in message
    assert "two.yaml: (root): 'title' is a required property" in message
    assert "two.yaml: fields[0]: 'label' is a required property" in message


def test_condition_values_are_checked_against_choices(tmp_path):
    write(tmp_path, "lists.yaml", "colours: [{value: red, label: Red}]\n")
    write(
        tmp_path,
        "f.yaml",
        """\
title: F
fields:
  - {name: colour, type: choice, label: Colour, choices_from: colours}
  - {name: shade, type: text, label: Shade, show_if: {field: colour, in: [red, blue]}}
  - {name: age, type: number, label: Age}
  - {name: note, type: text, label: Note, show_if: {field: age, equals: "5"}}
  - {name: phone, type: phone, label: Phone}
  - {name: other, type: text, label: Other, show_if: {field: phone, equals: "+1"}}
""",
    )
    problems = problems_of(tmp_path)
    assert problems == [
        "f.yaml: fields[1].show_if.in: 'blue' is not one of the field's choices (red)",
        "f.yaml: fields[3].show_if.equals: '5' is not a number",
        "f.yaml: fields[5].show_if.field: show_if cannot depend on a phone field",
    ]


def test_registered_choice_source_makes_a_list_known(tmp_path):
    field = "{name: s, type: choice, label: S, choices_from: teams}"
    write(tmp_path, "f.yaml", f"title: F\nfields:\n  - {field}\n")
    assert "unknown choice list 'teams'" in problems_of(tmp_path)[0]
    register_choice_source("teams", lambda: [("a", "Team A")])
    try:
        assert load_form_definitions(tmp_path)["f"].field("s").choices_from == "teams"
    finally:
        formkit.unregister_choice_source("teams")


def test_code_source_overrides_the_file_list(post):
    register_choice_source("sexes", lambda: [("f", "Woman"), ("m", "Man")])
    try:
        bound = post("demo_person", {"sex": "female"})
        assert [(c.value, c.label) for c in bound.form.sex.choices] == [("f", "Woman"), ("m", "Man")]
        assert not bound.validate()
        assert bound.errors["sex"] == ["Choose one of the options shown."]
        assert post("demo_person", {"sex": "m"}).raw_data()["sex"] == "m"
    finally:
        formkit.unregister_choice_source("sexes")


def test_app_refuses_to_start_with_broken_definitions(tmp_path):
    write(tmp_path, "bad.yaml", "title: Bad\nfields: [{name: x, type: text}]\n")
    with pytest.raises(FormDefinitionError, match=r"bad.yaml: fields\[0\]: 'label' is a required"):
        make_app(tmp_path)


def test_missing_directory_is_an_error(tmp_path):
    assert problems_of(tmp_path / "absent") == [f"{tmp_path / 'absent'}: (directory): not found"]


def test_texts_are_stripped_msgids(tmp_path):
    field = "{name: a, type: text, label: ' A '}"
    write(tmp_path, "f.yaml", f"title: '  T  '\nintro: |\n  Hello\nfields:\n  - {field}\n")
    definition = load_form_definitions(tmp_path)["f"]
    assert (definition.title, definition.intro, definition.fields[0].label) == ("T", "Hello", "A")


WEIRD = [
    None,
    True,
    0,
    -1,
    1.5,
    float("inf"),
    float("nan"),
    "",
    "x",
    "today",
    [],
    [1],
    ["a"],
    {},
    {"a": 1},
    [{"value": "v"}],
    [{"value": "v", "label": "L"}],
    {"field": "a"},
]
GOOD_FORM = {
    "title": "T",
    "fields": [
        {"name": "a", "type": "choice", "label": "A", "choices": [{"value": "v", "label": "V"}]},
        {
            "name": "b",
            "type": "number",
            "label": "B",
            "min": 0,
            "max": 9,
            "show_if": {"field": "a", "equals": "v"},
        },
        {"name": "c", "type": "date", "label": "C", "min": "today"},
    ],
}


def test_any_garbage_gives_problems_never_a_crash(tmp_path):
    import copy

    import yaml

    seen = 0
    for index in range(len(GOOD_FORM["fields"])):
        for key in ("name", "type", "label", "choices", "min", "max", "show_if", "widget", "integer"):
            for value in WEIRD:
                form = copy.deepcopy(GOOD_FORM)
                form["fields"][index][key] = value
                (tmp_path / "f.yaml").write_text(yaml.safe_dump(form))
                try:
                    load_form_definitions(tmp_path)
                except FormDefinitionError as error:
                    assert all(p.startswith("f.yaml: ") for p in error.problems)
                    seen += 1
    assert seen > 300


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "just text",
        "sexes: 3",
        "1: [{value: a, label: A}]",
        "sexes: [{value: [a], label: A}]",
        "sexes: [{value: a}]",
        "sexes: [{value: a, label: A}, {value: a, label: B}]",
    ],
)
def test_broken_lists_file_is_reported(tmp_path, text):
    write(tmp_path, "lists.yaml", text)
    write(tmp_path, "f.yaml", "title: F\nfields: [{name: s, type: choice, label: S, choices_from: sexes}]\n")
    problems = problems_of(tmp_path)
    assert any(p.startswith("lists.yaml: ") for p in problems), problems
    if "sexes" in text:
        assert all(p.startswith("lists.yaml: ") for p in problems), problems
