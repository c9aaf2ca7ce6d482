"""Translation: texts of definitions go through gettext and are found by the extractor."""

from __future__ import annotations

import io
import shutil

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from flask import render_template_string
from flask_babel import force_locale

from app.formkit import build_form, get_definition, load_form_definitions
from app.formkit.babel_extract import extract_forms
from tests.formkit.conftest import FORMS_DIR, REPO, make_app

CONSENT_Q = "Has the person given informed consent to be referred?"
LIMITS_HELP = "Any limits the person set, for example information that must not be shared."
AT_MOST = "Use at most %(max)d characters (you used %(count)d)."
SPANISH = {
    "Consent": "Consentimiento",
    CONSENT_Q: "¿La persona ha dado su consentimiento informado para ser remitida?",
    "Who gave consent?": "¿Quién dio el consentimiento?",
    "A parent or caregiver": "Madre, padre o cuidador",
    LIMITS_HELP: "Los límites que puso la persona.",
    "Yes": "Sí",
    "Please answer this question.": "Responda esta pregunta.",
    AT_MOST: "Use como máximo %(max)d caracteres (usó %(count)d).",
}


def spanish_app(tmp_path):
    catalog = Catalog(locale="es")
    for english, spanish in SPANISH.items():
        catalog.add(english, spanish)
    folder = tmp_path / "translations" / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "messages.mo", "wb") as mo:
        write_mo(mo, catalog)
    forms = tmp_path / "forms"
    forms.mkdir()
    for path in [*FORMS_DIR.glob("demo_*.yaml"), FORMS_DIR / "lists.yaml"]:
        shutil.copy(path, forms / path.name)
    return make_app(forms, translations=tmp_path / "translations")


def test_labels_help_choices_and_errors_are_translated(tmp_path):
    app = spanish_app(tmp_path)
    posted = {"consent_given": "yes", "consent_notes": "x" * 10_001}
    with app.test_request_context("/", method="POST", data=posted), force_locale("es"):
        bound = build_form(get_definition("demo_consent"))
        assert bound.title == "Consentimiento"
        form = bound.form
        assert form.consent_given.label.text == SPANISH[CONSENT_Q]
        assert [c.label for c in form.consent_given.choices] == ["Sí", "No"]
        assert form.consent_by.label.text == "¿Quién dio el consentimiento?"
        assert form.consent_by.choices[1].label == "Madre, padre o cuidador"
        assert form.consent_notes.description == "Los límites que puso la persona."
        assert not bound.validate()
        assert "Responda esta pregunta." in bound.errors["consent_by"]
        assert bound.errors["consent_notes"] == ["Use como máximo 10000 caracteres (usó 10001)."]
        html = render_template_string(
            '{% from "formkit/_macros.html" import render_fields %}{{ render_fields(b) }}', b=bound
        )
        assert "¿Quién dio el consentimiento?" in html and "Madre, padre o cuidador" in html


def test_english_stays_when_no_catalog_matches(tmp_path):
    app = spanish_app(tmp_path)
    with app.test_request_context("/"), force_locale("pl"):
        bound = build_form(get_definition("demo_consent"))
        assert bound.form.consent_by.label.text == "Who gave consent?"


SAMPLE = b"""\
title: Sample
intro: |
  First paragraph.

  Second paragraph.
fields:
  - name: colour
    type: choice
    label: Favourite colour
    help: Pick one.
    choices:
      - {value: red, label: Red}
      - {value: blue, label: "Blue "}
"""


def test_extractor_yields_every_text_with_its_line():
    found = list(extract_forms(io.BytesIO(SAMPLE), ["_"], [], {}))
    assert found == [
        (1, None, "Sample", ["title"]),
        (2, None, "First paragraph.\n\nSecond paragraph.", ["intro"]),
        (9, None, "Favourite colour", ["label of colour"]),
        (10, None, "Pick one.", ["help of colour"]),
        (12, None, "Red", ["label of red"]),
        (13, None, "Blue", ["label of blue"]),
    ]


def test_extractor_covers_every_text_of_forms_and_lists(forms_dir):
    messages = set()
    for path in forms_dir.glob("*.yaml"):
        with open(path, "rb") as fileobj:
            messages |= {message for _, _, message, _ in extract_forms(fileobj, [], [], {})}
    texts = set()
    for definition in load_form_definitions(forms_dir).values():
        texts |= {definition.title, definition.intro} - {None}
        for field in definition.fields:
            texts |= {field.label, field.help, *(c.label for c in field.choices)} - {None}
    assert texts <= messages
    assert {"Health care", "Prefers not to say", "Ukrainian"} <= messages  # lists.yaml


def test_babel_cfg_extracts_python_templates_and_forms():
    with open(REPO / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, "babel.cfg")
    found: dict[str, set[str]] = {}
    for filename, _, message, _, _ in extract_from_dir(str(REPO), method_map, options_map):
        found.setdefault(message if isinstance(message, str) else message[0], set()).add(filename)
    assert "app/formkit/fields.py" in found["Please answer this question."]
    assert "app/formkit/templates/formkit/_macros.html" in found["required"]
    assert "forms/demo_consent.yaml" in found["Who gave consent?"]
    assert "forms/lists.yaml" in found["Legal aid"]
    assert "_l" in options_map["app/**.py"]["keywords"]
