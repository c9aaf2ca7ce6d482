"""The in-memory shape of a form definition: frozen dataclasses built by the loader."""

from __future__ import annotations

from dataclasses import dataclass


class FormDefinitionError(ValueError):
    """One or more form definitions are invalid.

    ``problems`` holds every problem found, each as ``"file: path.to.field: message"``;
    the exception message lists them all, one per line.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = f"{count} problem{'s' if count != 1 else ''} in form definitions:"
        super().__init__("\n".join([heading, *(f"  {p}" for p in self.problems)]))


@dataclass(frozen=True)
class Choice:
    """One option of a choice or multichoice field; ``label`` is the English msgid."""

    value: str
    label: str


@dataclass(frozen=True)
class Condition:
    """A ``show_if`` rule: the field is shown when ``op`` holds for the answer to ``field``.

    ``op`` is ``equals``, ``not_equals``, ``in`` or ``contains``; ``values`` holds the one
    value of ``equals``/``not_equals``/``contains`` or the list of ``in``.
    """

    field: str
    op: str
    values: tuple[str | int | float | bool, ...]


@dataclass(frozen=True)
class FieldDefinition:
    """One question of a form. Text attributes are English msgids, translated on use."""

    name: str
    type: str
    label: str
    help: str | None = None
    required: bool = False
    personal: bool = False
    expose: bool = False
    min_length: int | None = None
    max_length: int | None = None
    integer: bool = False
    #: Numbers for ``number`` fields; ISO dates or ``"today"`` for ``date`` fields.
    min: int | float | str | None = None
    max: int | float | str | None = None
    widget: str = "radio"
    #: Inline choices, or the choices of the named list in ``lists.yaml`` (if any).
    choices: tuple[Choice, ...] = ()
    #: Name of a choice list; a source registered in code takes precedence over the file.
    choices_from: str | None = None
    show_if: Condition | None = None

    @property
    def exposed(self) -> bool:
        """Whether the answer may go into the workflow's data."""
        return not self.personal or self.expose

    @property
    def has_choices(self) -> bool:
        """Whether the field is a single or multiple choice."""
        return self.type in ("choice", "multichoice")


@dataclass(frozen=True)
class FormDefinition:
    """A form: the fields shown for one user task (``key`` is the YAML file's stem)."""

    key: str
    title: str
    intro: str | None
    fields: tuple[FieldDefinition, ...]

    def field(self, name: str) -> FieldDefinition | None:
        """The field called ``name``, or None."""
        return next((f for f in self.fields if f.name == name), None)

    @property
    def field_names(self) -> list[str]:
        """The names of all fields, in order."""
        return [f.name for f in self.fields]
