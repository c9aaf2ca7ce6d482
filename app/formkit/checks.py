"""Semantic checks on a form definition that passed (or partly passed) the JSON Schema.

Every check reads the raw YAML data defensively, so it can run even when the schema found
problems, and all problems are reported together. Each problem is ``(path, message)``.
"""

from __future__ import annotations

import keyword
import math
from datetime import date

from flask_wtf import FlaskForm

COMMON_KEYS = {"name", "type", "label", "help", "required", "personal", "expose", "show_if"}
TYPE_KEYS = {
    "text": {"min_length", "max_length"},
    "textarea": {"min_length", "max_length"},
    "number": {"integer", "min", "max"},
    "date": {"min", "max"},
    "choice": {"choices", "choices_from", "widget"},
    "multichoice": {"choices", "choices_from"},
    "yesno": set(),
    "phone": set(),
}
OPERATORS = ("equals", "not_equals", "in", "contains")
#: Names the form machinery uses itself (WTForms attributes, our own, hidden inputs).
RESERVED_NAMES = {name for name in dir(FlaskForm) if not name.startswith("_")} | {
    "meta",
    "form_errors",
    "formkit",
    "csrf_token",
    "formkit_shown",
}

Problem = tuple[str, str]


def check_form(raw: dict, known_lists: dict[str, tuple[str, ...] | None] | None) -> list[Problem]:
    """Check the fields of a form definition.

    ``known_lists`` maps every usable list name to its values, or to None when the values
    are only known at run time (a source registered in code); it is None when lists.yaml
    is unreadable, and then list names are not checked.
    """
    fields = raw.get("fields")
    if not isinstance(fields, list):
        return []
    problems: list[Problem] = []
    earlier: dict[str, dict] = {}
    names = {f.get("name") for f in fields if isinstance(f, dict) and isinstance(f.get("name"), str)}
    for index, spec in enumerate(fields):
        if not isinstance(spec, dict):
            continue
        path = f"fields[{index}]"
        name = spec.get("name")
        problems += _check_name(path, name, earlier)
        problems += _check_keys(path, spec)
        problems += _check_type_rules(path, spec, known_lists)
        if isinstance(spec.get("show_if"), dict):
            problems += _check_condition(f"{path}.show_if", spec, earlier, names, known_lists)
        if isinstance(name, str) and name not in earlier:
            earlier[name] = spec
    return problems


def _check_name(path: str, name: object, earlier: dict) -> list[Problem]:
    if not isinstance(name, str):
        return []
    if name in earlier:
        return [(f"{path}.name", f"duplicate field name '{name}'")]
    if name in RESERVED_NAMES or keyword.iskeyword(name):
        return [(f"{path}.name", f"'{name}' is a reserved name; choose another")]
    return []


def _check_keys(path: str, spec: dict) -> list[Problem]:
    ftype = spec.get("type")
    if not isinstance(ftype, str) or ftype not in TYPE_KEYS:
        return []
    problems = [
        (f"{path}.{key}", f"'{key}' does not apply to a {ftype} field")
        for key in spec
        if key not in COMMON_KEYS | TYPE_KEYS[ftype] and key in _ALL_TYPE_KEYS
    ]
    if spec.get("expose") and not spec.get("personal"):
        problems.append((f"{path}.expose", "'expose' only applies to personal fields (add 'personal: true')"))
    return problems


_ALL_TYPE_KEYS = set().union(*TYPE_KEYS.values())


def _check_type_rules(path: str, spec: dict, known_lists: dict | None) -> list[Problem]:
    ftype = spec.get("type")
    if ftype in ("choice", "multichoice"):
        return _check_choices(path, spec, known_lists)
    if ftype == "number":
        return _check_number_bounds(path, spec)
    if ftype == "date":
        return _check_date_bounds(path, spec)
    if ftype in ("text", "textarea"):
        low, high = spec.get("min_length"), spec.get("max_length")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            return [(f"{path}.min_length", "min_length is greater than max_length")]
    return []


def _check_choices(path: str, spec: dict, known_lists: dict | None) -> list[Problem]:
    has_inline, source = "choices" in spec, spec.get("choices_from")
    if has_inline and source is not None:
        return [(path, "use either 'choices' or 'choices_from', not both")]
    if not has_inline and source is None:
        return [(path, f"a {spec['type']} field needs 'choices' or 'choices_from'")]
    if isinstance(source, str) and known_lists is not None and source not in known_lists:
        known = ", ".join(sorted(known_lists)) or "none"
        return [(f"{path}.choices_from", f"unknown choice list '{source}' (known: {known})")]
    choices = spec.get("choices")
    if not isinstance(choices, list):
        return []
    values = [c.get("value") if isinstance(c, dict) else None for c in choices]
    return [
        (f"{path}.choices[{index}].value", f"duplicate value '{value}'")
        for index, value in enumerate(values)
        if isinstance(value, str) and value in values[:index]
    ]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_number_bounds(path: str, spec: dict) -> list[Problem]:
    problems = []
    for key in ("min", "max"):
        value = spec.get(key)
        if key in spec and not _is_number(value):
            problems.append((f"{path}.{key}", f"{key} of a number field must be a number"))
        elif spec.get("integer") and _is_number(value) and value != int(value):
            problems.append((f"{path}.{key}", f"{key} of an integer field must be whole"))
    low, high = spec.get("min"), spec.get("max")
    if _is_number(low) and _is_number(high) and low > high:
        problems.append((f"{path}.min", "min is greater than max"))
    return problems


def parse_date_bound(value: object) -> date | None:
    """An ISO date or ``today`` as a date (today's date for ``today``); None if invalid."""
    if value == "today":
        return date.today()
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _check_date_bounds(path: str, spec: dict) -> list[Problem]:
    problems = []
    for key in ("min", "max"):
        if key in spec and parse_date_bound(spec[key]) is None:
            message = f"{key} of a date field must be a date as YYYY-MM-DD or 'today'"
            problems.append((f"{path}.{key}", message))
    low, high = parse_date_bound(spec.get("min")), parse_date_bound(spec.get("max"))
    if low and high and low > high:
        problems.append((f"{path}.min", "min is later than max"))
    return problems


def _check_condition(
    path: str, spec: dict, earlier: dict, names: set, known_lists: dict | None
) -> list[Problem]:
    condition = spec["show_if"]
    ops = [op for op in OPERATORS if op in condition]
    if len(ops) != 1:
        return [(path, "show_if needs exactly one of: " + ", ".join(OPERATORS))]
    target = condition.get("field")
    if not isinstance(target, str):
        return []
    if target == spec.get("name"):
        return [(f"{path}.field", "a field cannot depend on itself")]
    if target not in earlier:
        where = "comes later in the form" if target in names else "does not exist"
        return [(f"{path}.field", f"field '{target}' {where}; show_if must name an earlier field")]
    return _check_condition_values(path, ops[0], condition[ops[0]], earlier[target], known_lists)


def _check_condition_values(
    path: str, op: str, operand: object, target: dict, known_lists: dict | None
) -> list[Problem]:
    ttype = target.get("type")
    if ttype in ("phone", "textarea"):
        return [(f"{path}.field", f"show_if cannot depend on a {ttype} field")]
    if (op == "contains") != (ttype == "multichoice"):
        message = (
            "use 'contains' with a multichoice field"
            if ttype == "multichoice"
            else "'contains' only works with a multichoice field"
        )
        return [(f"{path}.{op}", message)]
    values = operand if isinstance(operand, list) else [operand]
    allowed = _choice_values(target, known_lists)
    for value in values:
        problem = _value_problem(ttype, value, allowed)
        if problem:
            return [(f"{path}.{op}", problem)]
    return []


def _choice_values(target: dict, known_lists: dict | None) -> tuple[str, ...] | None:
    if "choices" in target and isinstance(target["choices"], list):
        return tuple(c.get("value") for c in target["choices"] if isinstance(c, dict))
    source = target.get("choices_from")
    return known_lists.get(source) if known_lists and isinstance(source, str) else None


def _value_problem(ttype: str, value: object, allowed: tuple | None) -> str | None:
    if ttype == "yesno" and not isinstance(value, bool):
        return f"{value!r} is not true or false (the answer to a yesno field)"
    if ttype == "number" and not _is_number(value):
        return f"{value!r} is not a number"
    if ttype in ("text", "date", "choice", "multichoice") and not isinstance(value, str):
        return f"{value!r} must be text (put it in quotes)"
    if ttype == "date" and (value == "today" or parse_date_bound(value) is None):
        return f"{value!r} is not a date as YYYY-MM-DD"
    if ttype in ("choice", "multichoice") and allowed is not None and value not in allowed:
        return f"'{value}' is not one of the field's choices ({', '.join(allowed)})"
    return None
