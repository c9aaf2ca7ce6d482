"""Named choice lists: ``forms/lists.yaml`` plus sources registered in code.

A source registered in code (for example the service types of the directory, read from the
database) overrides a list of the same name in the file. Register sources before
``init_app`` runs, so that definitions naming them pass the start-up check; the callable
itself is only called when a form is built, inside the request, so its labels can be
translated or read from the database there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask_babel import gettext

from app.formkit.definitions import FieldDefinition

ChoiceSource = Callable[[], Iterable[tuple[str, str]]]

_SOURCES: dict[str, ChoiceSource] = {}


def register_choice_source(name: str, source: ChoiceSource) -> None:
    """Register ``source`` as the choice list ``name``.

    ``source()`` returns ``(value, label)`` pairs; labels are shown as returned (translate
    them in the callable if needed). Replaces an earlier source of the same name.
    """
    _SOURCES[name] = source


def unregister_choice_source(name: str) -> None:
    """Forget the source registered as ``name`` (used by tests)."""
    _SOURCES.pop(name, None)


def registered_source_names() -> set[str]:
    """Names of the choice lists registered in code."""
    return set(_SOURCES)


def field_choices(field: FieldDefinition) -> list[tuple[str, str]]:
    """The ``(value, label)`` pairs of a choice field, labels in the current language."""
    if field.choices_from and field.choices_from in _SOURCES:
        return [(str(value), str(label)) for value, label in _SOURCES[field.choices_from]()]
    return [(choice.value, gettext(choice.label)) for choice in field.choices]
