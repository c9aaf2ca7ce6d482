"""Helpers the macros in ``formkit/_macros.html`` call (registered as template globals)."""

from __future__ import annotations

from flask import g, url_for
from markupsafe import Markup
from wtforms import Field
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget, RadioInput, SubmitInput


def field_kind(field: Field) -> str:
    """How ``render_field`` lays out a field.

    ``hidden`` (CSRF token, hidden inputs), ``radios`` and ``checkboxes`` (a fieldset with
    a legend), ``checkbox`` (one box, label after it), ``submit``, or ``input`` (label,
    help, error, then the control: text, select, textarea, ...).
    """
    widget = field.widget
    if isinstance(widget, HiddenInput):
        return "hidden"
    if isinstance(widget, ListWidget):
        option = getattr(field, "option_widget", None)
        return "radios" if isinstance(option, RadioInput) else "checkboxes"
    if isinstance(widget, SubmitInput):
        return "submit"
    if isinstance(widget, CheckboxInput):
        return "checkbox"
    return "input"


def script_tag() -> Markup:
    """The ``<script>`` tag of formkit.js, the first time it is asked for in a request."""
    if g.get("_formkit_script_done"):
        return Markup("")
    g._formkit_script_done = True
    src = url_for("formkit.static", filename="formkit.js")
    return Markup('<script src="{}" defer></script>').format(src)
