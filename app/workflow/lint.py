"""Lint a parsed pathway: every expression, timer literal, DMN cell, form key, role and loop.

SpiffWorkflow's own validation catches XML, XSD and structure only. This module finds what
it does not — unsafe or broken expressions, bad timer literals, user tasks without a known
form or role, exclusive gateways without a default flow, back-edge loops (which stall past a
depth of 1,000), decision tables without a catch-all rule — as :class:`SpecProblem` items.
The messages are shown to coordinators: plain English, saying what to change.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition as CycleTimer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import DurationTimerEventDefinition as DurationTimer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as Timer
from SpiffWorkflow.bpmn.specs.mixins.exclusive_gateway import ExclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptTask
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.dmn.specs.business_rule_task_mixin import BusinessRuleTaskMixin
from SpiffWorkflow.specs.MultiChoice import MultiChoice

from app.workflow.safe_eval import check_code

_DMN_QUESTION_MARK = re.compile(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")  # as DMNEngine does
_WORD_JOIN = re.compile(r"\w\w$")  # "age" + "in [1]" -> "agein [1]": a different name


def properties(task_spec: Any) -> dict[str, str]:
    """A task spec's ``spiffworkflow:property`` values (``formKey``, ``allowBack`` ...)."""
    return (getattr(task_spec, "extensions", None) or {}).get("properties") or {}


@dataclass
class SpecProblem:
    """One thing wrong with a pathway, located as precisely as known: the file, the id of
    the element (what the editor highlights) and its name as the coordinator sees it.

    ``element_name`` is derived from ``file`` and ``element_id``, so it takes no part in
    comparisons.
    """

    file: str | None
    element_id: str | None
    message: str
    element_name: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = ":".join(part for part in (self.file, self.element_id) if part)
        if self.element_name and self.element_name != self.element_id:
            where = f"{where} ({self.element_name})" if where else f"({self.element_name})"
        return f"{where}: {self.message}" if where else self.message


def _one_of(values: Iterable[str]) -> str:
    """``a, b or c``"""
    items = sorted(values)
    if len(items) <= 1:
        return "".join(items) or "(none)"
    return ", ".join(items[:-1]) + " or " + items[-1]


class _Linter:
    def __init__(self, form_keys: set[str] | None, decision_files: dict[str, str],
                 operations: set[str] | None = None, roles: set[str] | None = None,
                 sequence_flows: dict[str | None, dict[tuple[str, str], str]] | None = None) -> None:
        self.form_keys, self.decision_files, self.operations = form_keys, decision_files, operations
        self.roles, self.sequence_flows = roles, sequence_flows or {}
        self.problems: list[SpecProblem] = []
        self.seen_tables: set[str] = set()

    def flow(self, file: str | None, source: str, target: str) -> str:
        """The id of the sequence flow from ``source`` to ``target`` (the source when unknown)."""
        return self.sequence_flows.get(file, {}).get((source, _display(target)), source)

    def add(self, file: str | None, element: str | None, message: str) -> None:
        if (problem := SpecProblem(file, element, message)) not in self.problems:
            self.problems.append(problem)

    def code(self, file: str | None, element: str | None, source: Any, mode: str, what: str) -> bool:
        """Add check_code problems for ``source``; True when it is clean."""
        if source is None or (isinstance(source, str) and not source.strip()):
            self.add(file, element, f"{what} is empty")
            return False
        issues = check_code(source, mode)
        for issue in issues:
            self.add(file, element, f"{what}: {issue}")
        return not issues

    def process(self, spec: BpmnProcessSpec) -> None:
        self.loops(spec)
        if getattr(spec, "completion_condition", None) is not None:
            self.code(spec.file, spec.name, spec.completion_condition, "eval", "completion condition")
        for ts in spec.task_specs.values():
            element = getattr(ts, "bpmn_id", None) or ts.name
            try:
                self.task(spec.file, element, ts)
            except Exception as exc:  # lint reports, it never raises
                self.add(spec.file, element, f"could not check this element: {exc!r}")

    def task(self, file: str | None, element: str, ts: Any) -> None:
        if isinstance(ts, ScriptTask):
            self.code(file, element, ts.script, "exec", "script")
        for attr, what in (("prescript", "pre-script"), ("postscript", "post-script")):
            if getattr(ts, attr, None) is not None:
                self.code(file, element, getattr(ts, attr), "exec", what)
        for condition, target in ts.cond_task_specs if isinstance(ts, MultiChoice) else []:
            if condition is not None:
                self.code(file, self.flow(file, element, target), condition.args[0], "eval",
                          f"condition on the flow to '{_display(target)}'")
        for attr in ("condition", "cardinality") if isinstance(ts, LoopTask) else ():
            if getattr(ts, attr, None) is not None:
                self.code(file, element, getattr(ts, attr), "eval", f"loop {attr}")
        if getattr(ts, "event_definition", None) is not None:
            self.event(file, element, ts.event_definition)
        if isinstance(ts, BusinessRuleTaskMixin):
            self.decision_table(ts.dmnEngine.decision_table)
        if isinstance(ts, ServiceTask):
            self.service_task(file, element, ts)
        if isinstance(ts, UserTask):
            self.user_task(file, element, ts)
        if isinstance(ts, ExclusiveGateway):
            self.gateway(file, element, ts)

    def user_task(self, file: str | None, element: str, ts: Any) -> None:
        """A user task names an existing form and sits in a lane named after a role."""
        form_key = properties(ts).get("formKey")
        if not form_key:
            self.add(file, element, "user task has no form: add the property formKey with the name of a form")
        elif self.form_keys is not None and form_key not in self.form_keys:
            self.add(file, element, f"form '{form_key}' has no definition in forms/")
        if self.roles is None:
            return
        allowed = _one_of(self.roles)
        if not ts.lane:
            self.add(file, element, f"user task is not in a lane: put it in the lane of the role that does it "
                                    f"({allowed})")
        elif ts.lane not in self.roles:
            hint = (f" (lane names are lower case: '{ts.lane.lower()}')" if ts.lane.lower() in self.roles
                    else "")
            self.add(file, element, f"user task is in the lane '{ts.lane}', which is not a role{hint}: "
                                    f"lanes must be named {allowed}")

    def gateway(self, file: str | None, element: str, ts: Any) -> None:
        """An exclusive gateway with conditions needs a default flow, or it can stop the referral."""
        if ts.default_task_spec is not None or not ts.cond_task_specs:
            return
        if len(ts.outputs) > 1:
            self.add(file, element, f"exclusive gateway has {len(ts.outputs)} outgoing flows and none is the "
                                    "default: mark one of them as the default flow, taken when no condition is true")
        else:
            self.add(file, element, "exclusive gateway has one outgoing flow and it has a condition: when the "
                                    "condition is false the referral stops; remove the condition or add a default "
                                    "flow")

    def service_task(self, file: str | None, element: str | None, ts: Any) -> None:
        """A service task must name a registered operator; its parameters are expressions."""
        name = getattr(ts, "operation_name", None)
        if not name:
            self.add(file, element, "service task has no operator")
        elif self.operations is not None and name not in self.operations:
            known = ", ".join(sorted(self.operations)) or "none"
            self.add(file, element, f"service task operator '{name}' is unknown (known: {known})")
        for param, spec in (getattr(ts, "operation_params", None) or {}).items():
            self.code(file, element, (spec or {}).get("value"), "eval", f"parameter '{param}'")

    def event(self, file: str | None, element: str, definition: Any) -> None:
        if isinstance(definition, MultipleEventDefinition):
            for child in definition.event_definitions:
                self.event(file, element, child)
        elif isinstance(definition, Timer):
            if self.code(file, element, definition.expression, "eval", "timer"):
                self.timer_literal(file, element, definition)
        elif getattr(definition, "expression", None) is not None:
            self.code(file, element, definition.expression, "eval", "event expression")
        for prop in [*getattr(definition, "correlation_properties", []),
                     *getattr(definition, "process_correlations", [])]:
            self.code(file, element, prop.retrieval_expression, "eval", f"correlation '{prop.name}'")

    def timer_literal(self, file: str | None, element: str, definition: Timer) -> None:
        node = ast.parse(definition.expression.strip(), mode="eval").body
        if not isinstance(node, ast.Constant):
            return  # a variable or an expression: only known when the timer starts
        kind = ("duration" if isinstance(definition, DurationTimer) else
                "cycle" if isinstance(definition, CycleTimer) else "date")
        try:
            if not isinstance(node.value, str):
                raise TypeError
            if kind == "duration":
                Timer.get_timedelta_from_start(Timer.parse_iso_duration(node.value))
            elif kind == "cycle":
                Timer.parse_iso_recurring_interval(node.value)
            elif not hasattr(Timer.parse_time_or_duration(node.value), "tzinfo"):
                raise ValueError
        except Exception:
            self.add(file, element, f"timer {node.value!r} is not a valid ISO 8601 {kind} "
                                    '(write it in quotes, e.g. "PT48H")')

    def decision_table(self, table: Any) -> None:
        if table.id in self.seen_tables:
            return
        self.seen_tables.add(table.id)
        file = self.decision_files.get(table.id)
        if table.hit_policy not in ("UNIQUE", "COLLECT"):
            self.add(file, table.id, f"hit policy '{table.hit_policy}' is not supported "
                                     "(use UNIQUE or COLLECT)")
        elif table.hit_policy == "UNIQUE":
            catch_all = next((rule for rule in table.rules if _catch_all(rule)), None)
            if catch_all is None:
                self.add(file, table.id, "decision table has no catch-all rule: when no rule matches, the decision "
                                         "sets nothing; add a last rule with '-' in every input column and the "
                                         "answer to give otherwise")
            for rule in table.rules[table.rules.index(catch_all) + 1:] if catch_all is not None else []:
                self.add(file, rule.id, f"rule {rule.row_number} can never apply: rule {catch_all.row_number} before "
                                        "it matches everything (the first matching rule decides); move the "
                                        "catch-all rule to the end")
        bad_inputs = {i.id for i in table.inputs if i.expression is not None
                      and not self.code(file, i.id, i.expression, "eval", f"input '{i.label or i.id}'")}
        for rule in table.rules:
            for entry in rule.inputEntries:
                for text in filter(None, [] if entry.input.id in bad_inputs else entry.lhs):
                    what = f"rule {rule.row_number} input entry {text!r}"
                    expr, joined = _dmn_match_expression(entry.input.expression or "dmninputexpr", text)
                    if joined and _WORD_JOIN.search(expr[: len(expr) - len(text) + 1]):
                        self.add(file, entry.id, f"{what} runs as {expr!r}; write '? {text.strip()}'")
                    else:
                        self.code(file, entry.id, expr, "eval", what)
            for entry in rule.outputEntries:
                if getattr(entry, "text", None):
                    self.code(file, entry.id, entry.text, "eval", f"rule {rule.row_number} output entry")

    def loops(self, spec: BpmnProcessSpec) -> None:
        """Report every back edge of the sequence-flow graph (iterative depth-first search)."""
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        for root in spec.task_specs:
            if root in state:
                continue
            state[root], stack = 1, [(root, iter(spec.task_specs[root].outputs))]
            while stack:
                name, outputs = stack[-1]
                for output in outputs:
                    if output.name not in state:
                        state[output.name] = 1
                        stack.append((output.name, iter(output.outputs)))
                        break
                    if state[output.name] == 1:
                        source, target = _display(name), _display(output.name)
                        self.add(spec.file, self.flow(spec.file, source, target),
                                 f"the sequence flow from '{source}' back to '{target}' "
                                 "forms a loop, which is not allowed: remove it and repeat the steps with a "
                                 "loop task (standard loop) or a call activity")
                else:
                    state[name] = 2
                    stack.pop()


def _catch_all(rule: Any) -> bool:
    """A rule every input matches: each input entry is empty or '-' (Spiff's "any")."""
    return all(lhs is None for entry in rule.inputEntries for lhs in entry.lhs)


def _display(task_name: str) -> str:
    """The diagram id behind one of Spiff's internal task spec names."""
    return re.sub(r"(\.BoundaryEvent(Split|Join)| \[child\])$", "", task_name)


def _dmn_match_expression(input_expr: str, text: str) -> tuple[str, bool]:
    """The expression Spiff's DMNEngine evaluates for an input entry, and whether it was
    made by joining input and entry (``age`` + ``< 18``; Spiff adds no space)."""
    match = _DMN_QUESTION_MARK.sub("dmninputexpr", text)
    if "dmninputexpr" in match:
        return match, False
    try:
        ast.parse(text)
        return f"({input_expr}) == ({text})", False
    except SyntaxError:
        return input_expr + text, True


def lint_pathway(parsed_spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec],
                 form_keys: set[str] | None = None, *,
                 decision_files: dict[str, str] | None = None,
                 operations: set[str] | None = None,
                 roles: set[str] | None = None,
                 decision_tables: Iterable[Any] = (),
                 sequence_flows: dict[str | None, dict[tuple[str, str], str]] | None = None) -> list[SpecProblem]:
    """Check every expression, user task, service task, gateway and sequence flow of a parsed
    pathway, and the decision tables it calls.

    ``form_keys``, ``operations`` (service-task operators) and ``roles`` (lane names), when
    given, are the only ones allowed. ``decision_files`` (decision table id -> file name)
    improves locations, and so does ``sequence_flows`` (file -> (source id, target id) -> flow
    id): problems with a condition or a loop then name the flow. ``decision_tables`` are more
    tables to check (those of every .dmn file of the pathway, called or not).
    """
    linter = _Linter(form_keys, decision_files or {}, operations, roles, sequence_flows)
    for spec in [parsed_spec, *subprocess_specs.values()]:
        linter.process(spec)
    _lint_tables(linter, decision_tables)
    return linter.problems


def lint_decision_tables(tables: Iterable[Any], decision_files: dict[str, str] | None = None) -> list[SpecProblem]:
    """Check DMN decision tables on their own: hit policy, catch-all rule, every cell."""
    linter = _Linter(None, decision_files or {})
    _lint_tables(linter, tables)
    return linter.problems


def _lint_tables(linter: _Linter, tables: Iterable[Any]) -> None:
    for table in tables:
        try:
            linter.decision_table(table)
        except Exception as exc:  # lint reports, it never raises
            linter.add(linter.decision_files.get(table.id), table.id, f"could not check this table: {exc!r}")
