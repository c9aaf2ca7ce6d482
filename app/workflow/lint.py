"""Lint a parsed pathway: every expression, timer literal, DMN cell, form key and loop.

SpiffWorkflow's own validation catches XML, XSD and structure only. This module finds what
it does not — unsafe or broken expressions, bad timer literals, user tasks without a known
form, back-edge loops (which stall past a depth of 1,000) — as :class:`SpecProblem` items.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition as CycleTimer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import DurationTimerEventDefinition as DurationTimer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as Timer
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
    """One thing wrong with a pathway, located as precisely as known."""

    file: str | None
    element_id: str | None
    message: str

    def __str__(self) -> str:
        where = ":".join(part for part in (self.file, self.element_id) if part)
        return f"{where}: {self.message}" if where else self.message



class _Linter:
    def __init__(self, form_keys: set[str] | None, decision_files: dict[str, str],
                 operations: set[str] | None = None) -> None:
        self.form_keys, self.decision_files, self.operations = form_keys, decision_files, operations
        self.problems: list[SpecProblem] = []
        self.seen_tables: set[str] = set()

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
                self.code(file, element, condition.args[0], "eval", f"condition on the flow to '{target}'")
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
            form_key = properties(ts).get("formKey")
            if not form_key:
                self.add(file, element, f"user task '{ts.bpmn_name or element}' has no formKey property")
            elif self.form_keys is not None and form_key not in self.form_keys:
                self.add(file, element, f"form '{form_key}' has no definition in forms/")

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
                        self.add(spec.file, source, f"the sequence flow from '{source}' back to '{target}' "
                                 "forms a loop; repeat steps with a standard loop or a call activity")
                else:
                    state[name] = 2
                    stack.pop()


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
                 operations: set[str] | None = None) -> list[SpecProblem]:
    """Check every expression, user task, service task and sequence flow of a parsed pathway.

    ``form_keys`` and ``operations`` (service-task operators), when given, are the only
    ones allowed. ``decision_files`` (decision table id -> file name) improves locations.
    """
    linter = _Linter(form_keys, decision_files or {}, operations)
    for spec in [parsed_spec, *subprocess_specs.values()]:
        linter.process(spec)
    return linter.problems
