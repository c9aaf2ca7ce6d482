"""JSON Schemas for form definitions (``forms/<key>.yaml``) and ``forms/lists.yaml``.

The schemas check structure and types only. Rules that need context (a field's type,
earlier fields, the named choice lists) are checked in :mod:`app.formkit.loader`, which
gives clearer messages than a schema could.
"""

from __future__ import annotations

#: Field and list names: they become names in the workflow's Python expressions.
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

FIELD_TYPES = (
    "text",
    "textarea",
    "number",
    "date",
    "choice",
    "multichoice",
    "yesno",
    "phone",
)

#: Text shown to people: not empty, not only spaces.
_TEXT = {"type": "string", "pattern": r"\S"}
_CONDITION_VALUE = {"type": ["string", "number", "boolean"]}

CHOICE_SCHEMA = {
    "type": "object",
    "required": ["value", "label"],
    "additionalProperties": False,
    "properties": {"value": _TEXT, "label": _TEXT},
}

CHOICES_SCHEMA = {"type": "array", "minItems": 1, "items": CHOICE_SCHEMA}

SHOW_IF_SCHEMA = {
    "type": "object",
    "required": ["field"],
    "additionalProperties": False,
    "properties": {
        "field": {"type": "string", "pattern": NAME_PATTERN},
        "equals": _CONDITION_VALUE,
        "not_equals": _CONDITION_VALUE,
        "in": {"type": "array", "minItems": 1, "items": _CONDITION_VALUE},
        "contains": _CONDITION_VALUE,
    },
}

FIELD_SCHEMA = {
    "type": "object",
    "required": ["name", "type", "label"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 64},
        "type": {"enum": list(FIELD_TYPES)},
        "label": _TEXT,
        "help": _TEXT,
        "required": {"type": "boolean"},
        "personal": {"type": "boolean"},
        "expose": {"type": "boolean"},
        "max_length": {"type": "integer", "minimum": 1},
        "min_length": {"type": "integer", "minimum": 0},
        "integer": {"type": "boolean"},
        # Numbers for ``number`` fields, ISO dates or "today" for ``date`` fields:
        # checked by the loader, which knows the field's type.
        "min": {"type": ["number", "string"]},
        "max": {"type": ["number", "string"]},
        "widget": {"enum": ["radio", "select"]},
        "choices": CHOICES_SCHEMA,
        "choices_from": {"type": "string", "pattern": NAME_PATTERN},
        "show_if": SHOW_IF_SCHEMA,
    },
}

FORM_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["title", "fields"],
    "additionalProperties": False,
    "properties": {
        "title": _TEXT,
        "intro": _TEXT,
        "fields": {"type": "array", "minItems": 1, "items": FIELD_SCHEMA},
    },
}

LISTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "propertyNames": {"pattern": NAME_PATTERN},
    "additionalProperties": CHOICES_SCHEMA,
}
