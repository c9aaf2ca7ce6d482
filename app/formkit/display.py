"""Saved answers as text for people (summaries, the referral page): ``formkit_display``."""

from __future__ import annotations

from datetime import date

from flask_babel import format_date, format_decimal, gettext

from app.formkit.choices import field_choices
from app.formkit.definitions import FieldDefinition

EMPTY = "—"


def display_value(field: FieldDefinition, value: object) -> str:
    """``value`` (a saved answer to ``field``) as text in the current language.

    Choices show their labels, yes/no answers "Yes"/"No", dates and numbers the local
    format. Never raises: a value the definition no longer knows is shown as it is.
    """
    if value is None or value == "" or value == []:
        return EMPTY
    if field.type == "yesno":
        if value in (True, "yes", "true"):
            return gettext("Yes")
        if value in (False, "no", "false"):
            return gettext("No")
    elif field.has_choices:
        labels = dict(field_choices(field))
        items = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(str(item), str(item)) for item in items)
    elif field.type == "date" and isinstance(value, str):
        try:
            return format_date(date.fromisoformat(value), "medium")
        except ValueError:
            pass
    elif field.type == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_decimal(value)
    return str(value)
