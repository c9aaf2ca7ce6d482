"""Load and check the form definitions of a directory (``forms/``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from app.formkit.checks import OPERATORS, check_form
from app.formkit.choices import registered_source_names
from app.formkit.definitions import (
    Choice,
    Condition,
    FieldDefinition,
    FormDefinition,
    FormDefinitionError,
)
from app.formkit.schema import FORM_SCHEMA, LISTS_SCHEMA

LISTS_FILE = "lists.yaml"
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

_FORM_VALIDATOR = Draft202012Validator(FORM_SCHEMA)
_LISTS_VALIDATOR = Draft202012Validator(LISTS_SCHEMA)


def load_form_definitions(directory: Path) -> dict[str, FormDefinition]:
    """Load every ``*.yaml`` form definition of ``directory`` (except ``lists.yaml``).

    Raises :class:`FormDefinitionError` listing every problem of every file, each as
    ``"file: path.to.field: message"``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FormDefinitionError([f"{directory}: (directory): not found"])
    problems: list[str] = []
    lists = load_choice_lists(directory / LISTS_FILE, problems)
    known: dict[str, tuple[str, ...] | None] | None = None
    if lists is not None:
        known = {
            name: None if choices is None else tuple(c.value for c in choices)
            for name, choices in lists.items()
        }
        known.update(dict.fromkeys(registered_source_names()))
    problems += [f"{p.name}: (file): use the .yaml extension" for p in directory.glob("*.yml")]
    definitions: dict[str, FormDefinition] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name == LISTS_FILE:
            continue
        raw = _read_yaml(path, problems)
        if raw is None:
            continue
        found = list(_schema_problems(_FORM_VALIDATOR, raw)) + check_form(raw, known)
        if not KEY_PATTERN.match(path.stem):
            found.append(("(file)", "name the file with lowercase letters, digits, _ or -"))
        found.sort(key=lambda problem: _natural(problem[0]))
        problems += [f"{path.name}: {where}: {message}" for where, message in found]
        if not found:
            definitions[path.stem] = _build_form(path.stem, raw, lists or {})
    if problems:
        raise FormDefinitionError(problems)
    return definitions


def load_choice_lists(path: Path, problems: list[str]) -> dict[str, tuple[Choice, ...] | None] | None:
    """Read ``lists.yaml`` (if it exists), appending its problems to ``problems``.

    A list with problems maps to None, and a file that cannot be read at all gives None,
    so forms naming those lists are not reported as well.
    """
    if not path.exists():
        return {}
    raw = _read_yaml(path, problems)
    if raw is None:
        return None
    found = list(_schema_problems(_LISTS_VALIDATOR, raw))
    found += [("(root)", f"list name {name!r} must be text") for name in raw if not isinstance(name, str)]
    broken = {where.split("[")[0] for where, _ in found}
    lists: dict[str, tuple[Choice, ...] | None] = {}
    for name, choices in raw.items():
        if not isinstance(name, str) or name in broken or "(root)" in broken:
            lists[str(name)] = None
            continue
        values = [c["value"] for c in choices]
        dups = [
            (f"{name}[{i}].value", f"duplicate value '{v}'") for i, v in enumerate(values) if v in values[:i]
        ]
        found += dups
        lists[name] = None if dups else tuple(Choice(c["value"], _text(c["label"])) for c in choices)
    problems += [f"{path.name}: {where}: {message}" for where, message in found]
    return lists


def _read_yaml(path: Path, problems: list[str]) -> dict | None:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: (file): cannot read: {exc}")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        problems.append(f"{path.name}: {where}: not valid YAML: {problem}")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{path.name}: (file): expected a mapping of keys to values")
        return None
    return raw


def _schema_problems(validator: Draft202012Validator, raw: dict) -> Iterable[tuple[str, str]]:
    for error in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.path))):
        message = error.message
        if error.validator == "type" and "string" in str(error.validator_value):
            if isinstance(error.instance, (bool, int, float)):
                message += " (put it in quotes: YAML reads yes/no/on/off as true/false)"
        yield _format_path(error.absolute_path), message


def _natural(path: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def _format_path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _build_form(key: str, raw: dict, lists: dict) -> FormDefinition:
    return FormDefinition(
        key=key,
        title=_text(raw["title"]),
        intro=_text(raw.get("intro")),
        fields=tuple(_build_field(spec, lists) for spec in raw["fields"]),
    )


def _build_field(spec: dict, lists: dict) -> FieldDefinition:
    inline = tuple(Choice(c["value"], _text(c["label"])) for c in spec.get("choices", ()))
    source = spec.get("choices_from")
    return FieldDefinition(
        name=spec["name"],
        type=spec["type"],
        label=_text(spec["label"]),
        help=_text(spec.get("help")),
        required=spec.get("required", False),
        personal=spec.get("personal", False),
        expose=spec.get("expose", False),
        min_length=spec.get("min_length"),
        max_length=spec.get("max_length"),
        integer=spec.get("integer", False),
        min=spec.get("min"),
        max=spec.get("max"),
        widget=spec.get("widget", "radio"),
        choices=inline or lists.get(source) or (),
        choices_from=source,
        show_if=_build_condition(spec.get("show_if")),
    )


def _text(value: str | None) -> str | None:
    """A text as its msgid: stripped, exactly as the Babel extractor reads it."""
    return value.strip() if value is not None else None


def _build_condition(raw: dict | None) -> Condition | None:
    if raw is None:
        return None
    op = next(op for op in OPERATORS if op in raw)
    values = raw[op] if op == "in" else [raw[op]]
    return Condition(field=raw["field"], op=op, values=tuple(values))
