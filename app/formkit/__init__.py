"""Forms server: definitions in ``forms/`` become validated, rendered WTForms forms.

Public API: :func:`init_app`, :func:`get_definition`, :func:`form_keys`,
:func:`build_form`, :class:`BoundForm`, :func:`display_value`, :func:`load_form_definitions`,
:func:`register_choice_source`, the definition dataclasses and
:class:`FormDefinitionError`. Templates: ``formkit/_macros.html``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, current_app

from app.formkit.builder import SHOWN_FIELD, BoundForm, build_form
from app.formkit.choices import register_choice_source, unregister_choice_source
from app.formkit.definitions import (
    Choice,
    Condition,
    FieldDefinition,
    FormDefinition,
    FormDefinitionError,
)
from app.formkit.display import display_value
from app.formkit.loader import load_form_definitions
from app.formkit.rendering import field_kind, script_tag

__all__ = [
    "SHOWN_FIELD",
    "BoundForm",
    "Choice",
    "Condition",
    "FieldDefinition",
    "FormDefinition",
    "FormDefinitionError",
    "build_form",
    "display_value",
    "form_keys",
    "get_definition",
    "init_app",
    "load_form_definitions",
    "register_choice_source",
    "unregister_choice_source",
]

#: Serves the templates and ``formkit.js``; it has no routes of its own.
bp = Blueprint(
    "formkit",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
    url_prefix="/formkit",
)


def init_app(app: Flask) -> None:
    """Load and check every definition in ``FORMS_DIR``; raise if any is invalid.

    Raises :class:`FormDefinitionError` (listing every problem), so the app refuses to
    start with broken forms. Register code choice sources before calling this.
    """
    directory = Path(app.config.get("FORMS_DIR") or Path(app.root_path).parent / "forms")
    app.extensions["formkit"] = load_form_definitions(directory)
    app.register_blueprint(bp)
    app.add_template_global(field_kind, "formkit_field_kind")
    app.add_template_global(script_tag, "formkit_script")
    app.add_template_global(display_value, "formkit_display")


def get_definition(key: str) -> FormDefinition | None:
    """The definition whose form key (file stem) is ``key``, or None."""
    return current_app.extensions["formkit"].get(key)


def form_keys() -> set[str]:
    """Every form key loaded at start-up."""
    return set(current_app.extensions["formkit"])
