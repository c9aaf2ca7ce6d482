"""Rendering with formkit/_macros.html: labels, help, errors, hidden conditional fields."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from flask import render_template_string
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired

from app.formkit import (
    FieldDefinition,
    build_form,
    display_value,
    get_definition,
    load_form_definitions,
)

VOID = {"input", "br", "img", "meta", "link", "hr"}


class Tag:
    def __init__(self, name: str, attrs: dict, wrapper: str | None):
        self.name, self.attrs, self.wrapper, self.text = name, attrs, wrapper, ""


class Page(HTMLParser):
    """Every element with its attributes and the formkit wrapper (data-field) around it."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[Tag] = []
        self._open: list[Tag] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        wrappers = [t.attrs["data-field"] for t in self._open if "data-field" in t.attrs]
        element = Tag(tag, dict(attrs), wrappers[-1] if wrappers else None)
        self.tags.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open and self._open.pop().name != tag:
            pass

    def handle_data(self, data):
        for element in self._open:
            element.text += data

    def find(self, tag: str | None = None, **attrs) -> list[Tag]:
        return [
            t
            for t in self.tags
            if (tag is None or t.name == tag)
            and all(t.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())
        ]

    def by_id(self, id_: str) -> Tag:
        (found,) = [t for t in self.tags if t.attrs.get("id") == id_]
        return found


def render_bound(*bounds) -> Page:
    template = (
        '{% from "formkit/_macros.html" import render_fields %}'
        "{% for b in bounds %}<form method=post novalidate>{{ render_fields(b) }}</form>{% endfor %}"
    )
    return Page(render_template_string(template, bounds=bounds))


def test_labels_point_at_their_inputs(get_ctx):
    page = render_bound(build_form(get_definition("demo_person")))
    labels = page.find("label")
    assert labels
    for label in labels:
        control = page.by_id(label.attrs["for"])
        assert control.name in ("input", "select", "textarea")
    for control in page.tags:
        if control.name in ("select", "textarea") or (
            control.name == "input" and control.attrs.get("type") not in ("hidden",)
        ):
            assert page.find("label", for_=control.attrs["id"]), control.attrs
    case_code = page.by_id("case_code")
    assert case_code.attrs["aria-required"] == "true"
    assert case_code.attrs["aria-describedby"] == "case_code-help"
    assert "required" not in case_code.attrs  # no browser validation racing hidden fields
    assert page.by_id("case_code-help").attrs["class"] == "field-help"
    assert page.find("span", class_="required-mark")
    assert page.find("input", name="csrf_token", type="hidden")
    assert page.find("input", name="formkit_shown")[0].attrs["value"] == (
        "case_code,full_name,age,sex,phone,location"
    )


def test_errors_sit_next_to_their_field_and_are_described(post):
    bound = post("demo_person", {"age": "200", "sex": "alien", "location": "capital"})
    assert not bound.validate()
    page = render_bound(bound)
    age = page.by_id("age")
    assert age.attrs["aria-invalid"] == "true"
    assert age.attrs["aria-describedby"] == "age-error"
    error = page.by_id("age-error")
    assert error.attrs["class"] == "field-error" and error.wrapper == age.wrapper == "age"
    assert error.text == "Enter a number from 0 to 120."
    assert page.find("div", data_field="age")[0].attrs["class"] == "field field-invalid"
    # Radios: one fieldset with a legend carries the description and the error.
    fieldset = page.by_id("sex")
    assert fieldset.name == "fieldset" and fieldset.attrs["aria-invalid"] == "true"
    assert fieldset.attrs["aria-describedby"] == "sex-error"
    assert page.by_id("sex-error").wrapper == "sex"
    assert [t.text for t in page.find("legend") if t.wrapper == "sex"] == ["Sex"]
    radios = [t for t in page.find("input", type="radio") if t.wrapper == "sex"]
    assert len(radios) == 4 and all(page.find("label", for_=r.attrs["id"]) for r in radios)
    assert "age-error" not in json.dumps([t.attrs for t in page.tags if t.wrapper != "age"])


def test_hidden_conditional_fields_carry_hidden_and_their_rule(get_ctx):
    page = render_bound(build_form(get_definition("demo_consent")))
    (wrapper,) = page.find("div", data_field="consent_by")
    assert "hidden" in wrapper.attrs
    assert json.loads(wrapper.attrs["data-show-if"]) == {
        "field": "consent_given",
        "op": "equals",
        "values": ["yes"],
    }
    assert "hidden" not in page.find("div", data_field="consent_given")[0].attrs
    assert page.find("input", name="formkit_shown")[0].attrs["value"] == "consent_given,consent_notes"
    shown = render_bound(build_form(get_definition("demo_consent"), data={"consent_given": True}))
    assert "hidden" not in shown.find("div", data_field="consent_by")[0].attrs


def test_newly_shown_fields_are_marked(post):
    bound = post("demo_consent", {"consent_given": "yes"}, shown=["consent_given"])
    (wrapper,) = render_bound(bound).find("div", data_field="consent_by")
    assert "hidden" not in wrapper.attrs and "field-new" in wrapper.attrs["class"]


def test_checkbox_groups_are_fieldsets_and_script_is_included_once(get_ctx):
    needs = build_form(get_definition("demo_needs"))
    page = render_bound(needs, build_form(get_definition("demo_consent")))
    services = page.by_id("services")
    assert services.name == "fieldset" and "role" not in services.attrs
    boxes = [t for t in page.find("input", type="checkbox") if t.wrapper == "services"]
    assert len(boxes) == 10 and boxes[0].attrs["id"] == "services-0"
    assert len(page.find("script")) == 1
    assert page.find("script")[0].attrs["src"] == "/formkit/static/formkit.js"


def test_text_is_escaped(get_ctx, tmp_path):
    (tmp_path / "x.yaml").write_text(
        "title: X\nfields:\n  - name: a\n    type: choice\n    label: '<b>A</b>'\n"
        "    help: '<i>h</i>'\n    choices: [{value: '\"v', label: '<script>'}]\n"
    )
    html = render_template_string(
        '{% from "formkit/_macros.html" import render_fields %}{{ render_fields(b) }}',
        b=build_form(load_form_definitions(tmp_path)["x"]),
    )
    assert "<b>" not in html and "<script>" not in html.replace("<script src", "")
    assert "&lt;b&gt;A&lt;/b&gt;" in html and "&lt;i&gt;h&lt;/i&gt;" in html


class AppForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()], description="Your work address")
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Remember me")
    role = SelectField("Role", choices=[SelectChoice("a", "Admin"), SelectChoice("c", "Caseworker")])
    channel = RadioField("Channel", choices=[SelectChoice("sms", "SMS"), SelectChoice("web", "Web")])
    note = TextAreaField("Note")
    name = StringField("Name")


def test_render_field_works_for_the_apps_own_forms(formkit_app):
    with formkit_app.test_request_context("/", method="POST", data={"email": ""}):
        form = AppForm()
        assert not form.validate()
        template = (
            '{% from "formkit/_macros.html" import render_field %}'
            "{% for f in form %}{{ render_field(f) }}{% endfor %}"
        )
        page = Page(render_template_string(template, form=form))
    assert page.find("input", name="csrf_token", type="hidden")
    email = page.by_id("email")
    assert email.attrs["type"] == "email" and email.attrs["aria-required"] == "true"
    assert email.attrs["aria-describedby"] == "email-help email-error"
    assert page.by_id("email-error").text == "This field is required."
    for name in ("password", "remember", "role", "note", "name"):
        assert page.find("label", for_=name), name
    remember = page.by_id("remember")
    assert remember.attrs["type"] == "checkbox" and remember.wrapper == "remember"
    assert page.by_id("role").name == "select"
    assert page.by_id("channel").name == "fieldset"
    assert [t.text for t in page.find("legend")] == ["Channel"]


def test_formkit_js_is_served(formkit_app):
    response = formkit_app.test_client().get("/formkit/static/formkit.js")
    assert response.status_code == 200
    assert b"formkit_shown" in response.data
    response.close()


def test_saved_answers_are_displayed_in_words(get_ctx):
    person, needs = get_definition("demo_person"), get_definition("demo_needs")
    assert display_value(person.field("sex"), "female") == "Female"
    assert display_value(needs.field("services"), ["health", "legal"]) == "Health care, Legal aid"
    assert display_value(get_definition("demo_review").field("confirm"), True) == "Yes"
    assert display_value(person.field("age"), 1200) == "1,200"
    assert display_value(person.field("location"), "gone") == "gone"
    assert display_value(person.field("full_name"), None) == "—"
    when = FieldDefinition(name="when", type="date", label="When")
    assert display_value(when, "2024-03-05") == "Mar 5, 2024"
    assert display_value(when, "2024-99-99") == "2024-99-99"
    html = render_template_string("{{ formkit_display(f, v) }}", f=person.field("sex"), v="male")
    assert html == "Male"
