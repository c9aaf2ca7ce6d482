"""WTForms fields for each formkit field type.

Every field keeps what was typed in ``data`` (a string, or a list of strings for
multichoice), so a draft or a re-displayed form never loses input and never fails on
garbage. ``parse()`` turns that into the clean answer or raises ``ValueError`` with a
translated message; validation runs ``parse()`` and the ``required`` rule, nothing else.
"""

from __future__ import annotations

import re
from datetime import date

from flask_babel import gettext
from wtforms import Field, RadioField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.fields.core import UnboundField
from wtforms.validators import StopValidation
from wtforms.widgets import CheckboxInput, DateInput, ListWidget, TelInput, TextArea, TextInput

from app.formkit.checks import parse_date_bound
from app.formkit.choices import field_choices
from app.formkit.definitions import FieldDefinition

#: Upper bound on text length when a definition sets none, so no answer is unbounded.
DEFAULT_MAX_LENGTH = {"text": 500, "textarea": 10_000}
#: ASCII digits only, as formkit.js reads them (Python's \d also matches other scripts).
_INTEGER = re.compile(r"^[+-]?[0-9]{1,15}$")
_DECIMAL = re.compile(r"^[+-]?[0-9]{1,15}([.,][0-9]{1,10})?$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")


def _text(value: object) -> str:
    """Any saved value as the text a single input shows."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return _text(value[0]) if value else ""
    return str(value)


def _clean_input(value: object) -> str:
    """A posted value as text, without NUL characters (no database can store them)."""
    return str(value).replace("\x00", "")


class FormkitMixin:
    """What every formkit field adds to its WTForms base.

    ``convert()`` reads the answer's format (a number, a real date, one of the choices);
    ``check()`` applies the definition's limits (length, min/max). Conditions use the
    converted answer; validation and ``answers()`` use ``parse()``, which does both.
    """

    definition: FieldDefinition
    data: str | list[str]

    def __init__(self, *args: object, definition: FieldDefinition, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.definition = definition
        if definition.required:
            self.flags.required = True

    def process_data(self, value: object) -> None:
        self.data = _text(value)

    def process_formdata(self, valuelist: list) -> None:
        self.data = _clean_input(valuelist[0]) if valuelist else ""

    def raw_value(self) -> str | list[str]:
        """What was typed or chosen, as strings, for a draft."""
        return self.data

    def convert(self) -> object:
        """The answer as a Python value (None when empty); ValueError if malformed."""
        return self.data.strip() or None

    def check(self, value: object) -> None:
        """Raise ValueError with a message if ``value`` breaks the definition's limits."""

    def parse(self) -> object:
        """The clean answer (None or [] when unanswered); ValueError if invalid."""
        value = self.convert()
        if value is not None and value != []:
            self.check(value)
        return value

    def condition_value(self) -> object:
        """The converted answer, or None when empty or malformed (used by show_if)."""
        try:
            return self.convert()
        except ValueError:
            return None

    def pre_validate(self, form: object) -> None:
        try:
            value = self.parse()
        except ValueError as exc:
            raise StopValidation(str(exc)) from exc
        if value is None or value == []:
            message = gettext("Please answer this question.") if self.definition.required else ""
            raise StopValidation(message)


class TextField(FormkitMixin, StringField):
    """``text`` and ``textarea``: trimmed text within the length limits."""

    def _value(self) -> str:
        return self.data

    def check(self, value: str) -> None:
        spec = self.definition
        longest = spec.max_length or DEFAULT_MAX_LENGTH[spec.type]
        if len(value) > longest:
            raise ValueError(
                gettext(
                    "Use at most %(max)d characters (you used %(count)d).",
                    max=longest,
                    count=len(value),
                )
            )
        if spec.min_length and len(value) < spec.min_length:
            raise ValueError(gettext("Use at least %(min)d characters.", min=spec.min_length))


class NumberField(TextField):
    """``number``: whole or decimal (a comma works as decimal point) within min/max."""

    def convert(self) -> int | float | None:
        text = self.data.strip().replace(" ", "")
        if not text:
            return None
        if self.definition.integer and not _INTEGER.fullmatch(text):
            raise ValueError(gettext("Enter a whole number, like 12."))
        if not _DECIMAL.fullmatch(text):
            raise ValueError(gettext("Enter a number, like 12 or 3.5."))
        number = float(text.replace(",", "."))
        return int(number) if number.is_integer() else number

    def check(self, value: int | float) -> None:
        low, high = self.definition.min, self.definition.max
        if (low is None or value >= low) and (high is None or value <= high):
            return
        if low is not None and high is not None:
            raise ValueError(gettext("Enter a number from %(min)s to %(max)s.", min=low, max=high))
        if low is not None:
            raise ValueError(gettext("Enter a number of at least %(min)s.", min=low))
        raise ValueError(gettext("Enter a number no greater than %(max)s.", max=high))


class DateField(TextField):
    """``date``: a real date as YYYY-MM-DD (what date inputs post), within min/max."""

    def convert(self) -> str | None:
        text = self.data.strip()
        if not text:
            return None
        try:
            if not _ISO_DATE.fullmatch(text):
                raise ValueError(text)
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(gettext("Enter a real date as YYYY-MM-DD.")) from None

    def check(self, value: str) -> None:
        day = date.fromisoformat(value)
        low, high = parse_date_bound(self.definition.min), parse_date_bound(self.definition.max)
        if low and day < low:
            raise ValueError(gettext("Enter a date on or after %(date)s.", date=low.isoformat()))
        if high and day > high:
            raise ValueError(gettext("Enter a date on or before %(date)s.", date=high.isoformat()))


class PhoneField(TextField):
    """``phone``: E.164 (+ country code and number); spaces, dashes, dots, brackets and a
    leading 00 (for +) are accepted and normalised away."""

    def convert(self) -> str | None:
        text = _PHONE_SEPARATORS.sub("", self.data)
        if not text:
            return None
        if text.startswith("00"):
            text = "+" + text[2:]
        if not _E164.fullmatch(text):
            raise ValueError(gettext("Enter a phone number with its country code, like +584141234567."))
        return text

    def check(self, value: str) -> None:
        """Phone numbers have no limits beyond their format."""


class _ChoiceParse(FormkitMixin):
    def convert(self) -> str | None:
        value = self.data.strip()
        if not value:
            return None
        if value not in {str(choice.value) for choice in self.choices}:
            raise ValueError(gettext("Choose one of the options shown."))
        return value


class RadioChoiceField(_ChoiceParse, RadioField):
    """``choice`` shown as radio buttons."""


class SelectChoiceField(_ChoiceParse, SelectField):
    """``choice`` shown as a drop-down list (its first option means "not chosen")."""


class YesNoField(_ChoiceParse, RadioField):
    """``yesno``: two radio buttons posting ``yes``/``no``; the answer is a bool."""

    def process_data(self, value: object) -> None:
        text = _text(value).strip().lower()
        self.data = {"true": "yes", "false": "no"}.get(text, text)

    def convert(self) -> bool | None:
        value = self.data.strip()
        if not value:
            return None
        if value not in ("yes", "no"):
            raise ValueError(gettext("Answer yes or no."))
        return value == "yes"


class MultiChoiceField(FormkitMixin, SelectMultipleField):
    """``multichoice``: checkboxes; the answer is the list of ticked values, in order."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def process_data(self, value: object) -> None:
        items = value if isinstance(value, (list, tuple)) else [value] if value else []
        self.data = [_text(item) for item in items]

    def process_formdata(self, valuelist: list) -> None:
        self.data = [_clean_input(item) for item in valuelist]

    def convert(self) -> list[str]:
        allowed = [str(choice.value) for choice in self.choices]
        chosen = {item.strip() for item in self.data} - {""}
        if chosen - set(allowed):
            raise ValueError(gettext("Choose only from the options shown."))
        return [value for value in allowed if value in chosen]


def make_field(spec: FieldDefinition) -> UnboundField:
    """The WTForms (unbound) field for a definition, labels in the current language."""
    kwargs: dict = {
        "label": gettext(spec.label),
        "description": gettext(spec.help) if spec.help else "",
        "definition": spec,
    }
    if spec.type in _WIDGETS:
        # Never let the browser remember what caseworkers type about other people.
        kwargs["widget"] = _WIDGETS[spec.type]()
        kwargs["render_kw"] = {"autocomplete": "off"}
    if spec.type in ("choice", "multichoice"):
        choices = field_choices(spec)
        if spec.type == "choice" and spec.widget == "select":
            choices = [("", gettext("Choose…")), *choices]
        kwargs["choices"] = [SelectChoice(value, label) for value, label in choices]
    elif spec.type == "yesno":
        kwargs["choices"] = [SelectChoice("yes", gettext("Yes")), SelectChoice("no", gettext("No"))]
    if spec.type == "number":
        kwargs["render_kw"]["inputmode"] = "numeric" if spec.integer else "decimal"
    return _field_class(spec)(**kwargs)


def _field_class(spec: FieldDefinition) -> type[Field]:
    if spec.type == "choice":
        return SelectChoiceField if spec.widget == "select" else RadioChoiceField
    return _CLASSES[spec.type]


_WIDGETS = {
    "text": TextInput,
    "textarea": TextArea,
    "number": TextInput,
    "date": DateInput,
    "phone": TelInput,
}
_CLASSES: dict[str, type[Field]] = {
    "text": TextField,
    "textarea": TextField,
    "number": NumberField,
    "date": DateField,
    "phone": PhoneField,
    "yesno": YesNoField,
    "multichoice": MultiChoiceField,
}
