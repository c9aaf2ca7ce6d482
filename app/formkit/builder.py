"""Turn a form definition into a bound WTForms form, and validate it by the definition.

Visibility is always decided here, from the answers, never by the browser: a conditional
field counts only when its ``show_if`` holds; hidden fields are neither validated nor kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import has_request_context, request
from flask_babel import gettext
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import Field

from app.formkit.conditions import condition_json, visible_names
from app.formkit.definitions import FieldDefinition, FormDefinition
from app.formkit.fields import FormkitMixin, make_field

#: Hidden input listing the fields that were on screen when the form was posted.
SHOWN_FIELD = "formkit_shown"
#: Longest string and list kept in a draft; anything longer is garbage, not an answer.
DRAFT_MAX_CHARS = 20_000
DRAFT_MAX_ITEMS = 200
_SUBMIT_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class FormkitForm(FlaskForm):
    """Base class of generated forms: ``validate()`` (and so ``validate_on_submit()``)
    goes through the :class:`BoundForm`, so visibility rules always apply."""

    formkit: BoundForm

    def validate(self, extra_validators: object = None) -> bool:
        return self.formkit.validate()


@dataclass(frozen=True)
class RenderItem:
    """One field as ``render_fields`` shows it."""

    field: Field
    hidden: bool
    show_if: str | None
    new: bool


def build_form(
    definition: FormDefinition,
    *,
    formdata: Mapping | None = None,
    data: Mapping[str, object] | None = None,
) -> BoundForm:
    """Build the form of ``definition``.

    ``formdata`` is the posted data; when None and the current request is a submission
    (POST, ...), ``request.form`` is used. ``data`` holds saved answers or a draft (clean
    values or strings) to pre-fill the fields; posted data wins over it.
    """
    if formdata is None and has_request_context() and request.method in _SUBMIT_METHODS:
        formdata = request.form
    if formdata is not None and not hasattr(formdata, "getlist"):
        formdata = MultiDict(
            [(k, v) for k, vs in formdata.items() for v in (vs if isinstance(vs, list) else [vs])]
        )
    attrs = {spec.name: make_field(spec) for spec in definition.fields}
    form_class = type(f"FormkitForm_{definition.key}", (FormkitForm,), attrs)
    form = form_class(formdata=formdata, data=dict(data or {}))
    shown = None
    if formdata is not None and SHOWN_FIELD in formdata:
        shown = {name.strip() for name in str(formdata.get(SHOWN_FIELD)).split(",")}
    return BoundForm(definition, form, submitted=formdata is not None, shown=shown)


class BoundForm:
    """A definition bound to answers: the WTForms ``form`` plus the visibility rules.

    ``newly_shown`` lists the conditional fields that became visible because of the posted
    answers but were not on screen (not in the posted ``formkit_shown``); while it is not
    empty, ``validate()`` returns False and those fields carry no errors.
    """

    def __init__(
        self,
        definition: FormDefinition,
        form: FormkitForm,
        *,
        submitted: bool = False,
        shown: set[str] | None = None,
    ) -> None:
        self.definition = definition
        self.form = form
        self.submitted = submitted
        self._valid: bool | None = None
        form.formkit = self
        values = {name: self._field(name).condition_value() for name in definition.field_names}
        self._visible = visible_names(definition, values)
        self.newly_shown: list[str] = []
        if submitted and shown is not None:
            self.newly_shown = [
                name
                for name in self._visible
                if definition.field(name).show_if is not None and name not in shown
            ]

    def _field(self, name: str) -> FormkitMixin:
        return self.form[name]

    @property
    def title(self) -> str:
        """The form's title in the current language."""
        return gettext(self.definition.title)

    @property
    def intro(self) -> str:
        """The form's introduction in the current language ('' if none)."""
        return gettext(self.definition.intro) if self.definition.intro else ""

    @property
    def errors(self) -> dict:
        """Errors by field name, after ``validate()``."""
        return self.form.errors

    def is_visible(self, name: str) -> bool:
        """Whether the field called ``name`` is shown for the current answers."""
        return name in self._visible

    def visible_fields(self) -> list[FieldDefinition]:
        """Definitions of the fields shown for the current answers, in order."""
        return [spec for spec in self.definition.fields if spec.name in self._visible]

    def validate(self) -> bool:
        """Validate the CSRF token and every visible field (hidden ones are skipped).

        False while ``newly_shown`` is not empty, even if everything else is valid.
        """
        valid = True
        for field in self.form:
            is_formkit = isinstance(field, FormkitMixin)
            if is_formkit and (field.name not in self._visible or field.name in self.newly_shown):
                field.errors = []
                continue
            valid = field.validate(self.form) and valid
        self._valid = valid and not self.newly_shown
        return self._valid

    def validate_on_submit(self) -> bool:
        """``validate()`` if the form was posted, else False."""
        return self.submitted and self.validate()

    def answers(self) -> dict[str, object]:
        """Clean answers of the visible fields (None or [] when left empty).

        Hidden fields are left out. Only after ``validate()`` returned True.
        """
        if not self._valid:
            raise RuntimeError("answers() needs a successful validate() first")
        return {name: self._field(name).parse() for name in self._visible}

    def workflow_data(self) -> dict[str, object]:
        """The answers the workflow may see: all but personal fields not marked expose."""
        return {name: value for name, value in self.answers().items() if self.definition.field(name).exposed}

    def raw_data(self) -> dict[str, str | list[str]]:
        """What was typed in the visible fields, unvalidated, for saving a draft.

        Never raises; values are strings (lists of strings for multichoice).
        """
        raw: dict[str, str | list[str]] = {}
        for name in self._visible:
            value = self._field(name).raw_value()
            if isinstance(value, str):
                raw[name] = value[:DRAFT_MAX_CHARS]
            else:
                raw[name] = [str(item)[:DRAFT_MAX_CHARS] for item in value[:DRAFT_MAX_ITEMS]]
        return raw

    def shown_value(self) -> str:
        """The value of the ``formkit_shown`` input: the visible fields, comma-separated."""
        return ",".join(self._visible)

    def render_items(self) -> list[RenderItem]:
        """Every field with what the macros need to show or hide it."""
        items = []
        for spec in self.definition.fields:
            condition = spec.show_if
            items.append(
                RenderItem(
                    field=self.form[spec.name],
                    hidden=spec.name not in self._visible,
                    show_if=(
                        condition_json(condition, self.definition.field(condition.field))
                        if condition
                        else None
                    ),
                    new=spec.name in self.newly_shown,
                )
            )
        return items
