"""``show_if`` conditions: evaluated on the server, and described for formkit.js.

The rule, the same in Python and in the script: a condition holds only when the field it
names is visible and answered; then ``equals``/``not_equals``/``in`` compare the answer,
and ``contains`` looks for the value among the ticked options of a multichoice field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from app.formkit.definitions import Condition, FieldDefinition, FormDefinition


def visible_names(definition: FormDefinition, values: Mapping[str, object]) -> list[str]:
    """Names of the fields shown for these answers, in order.

    ``values`` maps field names to parsed answers (None or [] when unanswered).
    """
    visible: list[str] = []
    for field in definition.fields:
        condition = field.show_if
        if condition is None or (
            condition.field in visible and holds(condition, values.get(condition.field))
        ):
            visible.append(field.name)
    return visible


def holds(condition: Condition, answer: object) -> bool:
    """Whether ``condition`` holds for ``answer`` (the parsed answer to its field)."""
    if answer is None or answer == [] or answer == "":
        return False
    if condition.op == "contains":
        return isinstance(answer, list) and any(_same(item, condition.values[0]) for item in answer)
    matched = any(_same(answer, expected) for expected in condition.values)
    return not matched if condition.op == "not_equals" else matched


def _same(answer: object, expected: object) -> bool:
    if isinstance(expected, bool) or isinstance(answer, bool):
        return answer is expected
    if isinstance(expected, (int, float)):
        return isinstance(answer, (int, float)) and answer == expected
    return str(answer) == str(expected)


def condition_json(condition: Condition, target: FieldDefinition) -> str:
    """The condition as JSON for the ``data-show-if`` attribute read by formkit.js.

    Values are written as the form posts them (``yes``/``no`` for a yesno field);
    ``number`` (``integer`` or ``decimal``) asks the script to read and compare numbers.
    """
    rule: dict[str, object] = {
        "field": condition.field,
        "op": condition.op,
        "values": [_as_posted(value) for value in condition.values],
    }
    if target.type == "number":
        rule["number"] = "integer" if target.integer else "decimal"
    return json.dumps(rule, separators=(",", ":"))


def _as_posted(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
