"""Parse, lint and serialize pathway specs (BPMN + DMN files) with SpiffWorkflow.

A pathway is ``files`` (file name -> XML text): one main ``.bpmn`` file plus shared ``.bpmn``
processes (call activities) and ``.dmn`` decision tables.  Every problem found — XML syntax,
XSD, structure, unsafe or invalid expressions, missing forms, loops — is collected into one
:class:`PathwayInvalid`; a raw lxml or Spiff exception never escapes.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition as CycleTimer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import DurationTimerEventDefinition as DurationTimer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as Timer
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptTask
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.dmn.specs.business_rule_task_mixin import BusinessRuleTaskMixin
from SpiffWorkflow.specs.MultiChoice import MultiChoice
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from app.workflow.safe_eval import check_code

#: The one serializer for specs and workflow state (the default config fails on Spiff specs).
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

_BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_PREFIXES = {_BPMN_NS: "bpmn:", "http://spiffworkflow.org/bpmn/schema/1.0/core": "spiffworkflow:",
             "http://www.omg.org/spec/DMN/20151101/dmn.xsd": "dmn:",
             "http://www.omg.org/spec/DMN/20180521/MODEL/": "dmn:",
             "https://www.omg.org/spec/DMN/20191111/MODEL/": "dmn:"}
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_DMN_QUESTION_MARK = re.compile(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")  # as DMNEngine does
_WORD_JOIN = re.compile(r"\w\w$")  # "age" + "in [1]" -> "agein [1]": a different name


@dataclass
class SpecProblem:
    """One thing wrong with a pathway, located as precisely as known."""

    file: str | None
    element_id: str | None
    message: str

    def __str__(self) -> str:
        where = ":".join(part for part in (self.file, self.element_id) if part)
        return f"{where}: {self.message}" if where else self.message


class PathwayInvalid(Exception):
    """The pathway cannot be published; ``problems`` lists everything found."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid pathway:\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass
class UserTaskInfo:
    """A user task as the app needs it: its form, its role (lane) and whether Back is allowed."""

    name: str
    title: str
    form_key: str | None
    lane: str | None
    process_id: str
    allow_back: bool = True


@dataclass
class ParsedPathway:
    """A parsed, lint-clean pathway."""

    process_id: str
    title: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    user_tasks: list[UserTaskInfo]
    form_keys: set[str]


class _Parser(SpiffBpmnParser):
    """Spiff's parser with a clearer message for a missing decision."""

    def get_engine(self, decision_ref: str | None, node: Any) -> Any:
        if decision_ref not in self.dmn_parsers:
            message = (f"decision '{decision_ref}' is not defined in any .dmn file" if decision_ref
                       else "business rule task has no calledDecisionId")
            raise ValidationException(message, node=node)
        return super().get_engine(decision_ref, node)


def _read_xml(text: str | bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)  # uploads are untrusted
    if isinstance(text, str):  # lxml refuses str with an encoding declaration
        text = _XML_DECLARATION.sub("", text, count=1)
    return etree.fromstring(text, parser)


def _from_validation(exc: ValidationException, default_file: str | None) -> SpecProblem:
    message = str(exc.args[0]) if exc.args else str(exc)
    message = re.sub(r"\{([^}]*)\}", lambda m: _PREFIXES.get(m[1], ""), message)
    if getattr(exc, "line_number", None):
        message += f" (line {exc.line_number})"
    return SpecProblem(exc.file_name or default_file, getattr(exc, "id", None) or None, message)


def _add_file(parser: SpiffBpmnParser, name: str, text: str | bytes) -> list[SpecProblem]:
    if not name.endswith((".bpmn", ".dmn")):
        return [SpecProblem(name, None, "unsupported file type (expected .bpmn or .dmn)")]
    try:
        root = _read_xml(text)
        if name.endswith(".dmn"):
            parser.add_dmn_xml(root, filename=name)
        else:
            parser.add_bpmn_xml(root, filename=name)
    except etree.XMLSyntaxError as exc:
        return [SpecProblem(name, None, f"XML syntax error at line {exc.lineno}: {exc.msg}")]
    except ValidationException as exc:
        return [_from_validation(exc, name)]
    except Exception as exc:  # a malformed upload must never escape as a raw error
        return [SpecProblem(name, None, f"cannot read file: {exc!r}")]
    return []


def _collect_subprocesses(parser: SpiffBpmnParser, spec: BpmnProcessSpec,
                          problems: list[SpecProblem]) -> dict[str, BpmnProcessSpec]:
    found: dict[str, BpmnProcessSpec] = {}
    pending, failed = [spec], set()
    while pending:
        current = pending.pop()
        for ts in current.task_specs.values():
            if not isinstance(ts, SubWorkflowTask) or ts.spec in found or ts.spec in failed:
                continue
            process_parser = parser.get_process_parser(ts.spec)
            try:
                if process_parser is None:
                    raise ValidationException(f"called process '{ts.spec}' is not defined in any file",
                                              file_name=current.file, id=ts.bpmn_id)
                found[ts.spec] = parser.get_spec(ts.spec)
                pending.append(found[ts.spec])
            except ValidationException as exc:
                failed.add(ts.spec)
                problems.append(_from_validation(exc, getattr(process_parser, "filename", current.file)))
    return found


def parse_pathway(files: dict[str, str], main_file: str,
                  form_keys: set[str] | None = None) -> ParsedPathway:
    """Parse and lint a pathway; raise :class:`PathwayInvalid` with every problem found.

    The main process is the one executable process defined in ``main_file``.  When
    ``form_keys`` is given, every user task's formKey must be one of them.
    """
    if main_file not in files:
        raise PathwayInvalid([SpecProblem(main_file, None, "main file is missing")])
    parser = _Parser(validator=VALIDATOR)
    problems: list[SpecProblem] = []
    for name in sorted(files):
        problems += _add_file(parser, name, files[name])
    main_ids = [pid for pid, pp in parser.process_parsers.items()
                if pp.filename == main_file and pp.process_executable]
    if len(main_ids) != 1:
        if not any(p.file == main_file for p in problems):
            found = f" ({', '.join(sorted(main_ids))})" if main_ids else ""
            problems.append(SpecProblem(main_file, None, "expected exactly one executable process "
                                        f"in the main file, found {len(main_ids)}{found}"))
        raise PathwayInvalid(problems)
    try:
        spec = parser.get_spec(main_ids[0])
    except ValidationException as exc:
        raise PathwayInvalid([*problems, _from_validation(exc, main_file)]) from None
    subprocess_specs = _collect_subprocesses(parser, spec, problems)
    decision_files = {table.id: dmn.filename for dmn in parser.dmn_parsers.values()
                      if dmn.decision is not None for table in dmn.decision.decisionTables}
    problems += lint_pathway(spec, subprocess_specs, form_keys, decision_files=decision_files)
    if problems:
        raise PathwayInvalid(problems)
    user_tasks = user_task_infos(spec, subprocess_specs)
    return ParsedPathway(process_id=main_ids[0], title=spec.description or main_ids[0], spec=spec,
                         subprocess_specs=subprocess_specs, user_tasks=user_tasks,
                         form_keys={t.form_key for t in user_tasks if t.form_key})


def _properties(task_spec: Any) -> dict[str, str]:
    return (getattr(task_spec, "extensions", None) or {}).get("properties") or {}


def user_task_infos(spec: BpmnProcessSpec,
                    subprocess_specs: dict[str, BpmnProcessSpec]) -> list[UserTaskInfo]:
    """The user tasks of a process and of the processes it calls (in parse order)."""
    infos = []
    for process in [spec, *subprocess_specs.values()]:
        for ts in process.task_specs.values():
            if isinstance(ts, UserTask):
                props = _properties(ts)
                infos.append(UserTaskInfo(
                    name=ts.bpmn_id, title=ts.bpmn_name or ts.bpmn_id, form_key=props.get("formKey"),
                    lane=ts.lane, process_id=process.name,
                    allow_back=props.get("allowBack", "true").strip().lower() != "false"))
    return infos


class _Linter:
    def __init__(self, form_keys: set[str] | None, decision_files: dict[str, str]) -> None:
        self.form_keys, self.decision_files = form_keys, decision_files
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
            self.add(file, element, "service tasks are not supported")
        if isinstance(ts, UserTask):
            form_key = _properties(ts).get("formKey")
            if not form_key:
                self.add(file, element, f"user task '{ts.bpmn_name or element}' has no formKey property")
            elif self.form_keys is not None and form_key not in self.form_keys:
                self.add(file, element, f"form '{form_key}' has no definition in forms/")

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
                 decision_files: dict[str, str] | None = None) -> list[SpecProblem]:
    """Check every expression, user task and sequence flow of a parsed pathway.

    ``decision_files`` (decision table id -> file name) only improves problem locations.
    """
    linter = _Linter(form_keys, decision_files or {})
    for spec in [parsed_spec, *subprocess_specs.values()]:
        linter.process(spec)
    return linter.problems


def serialize_specs(parsed: ParsedPathway) -> str:
    """JSON for a pathway version's specs: ``{"spec": ..., "subprocess_specs": {...}}``."""
    return json.dumps({
        "spec": SERIALIZER.to_dict(parsed.spec),
        "subprocess_specs": {k: SERIALIZER.to_dict(v) for k, v in parsed.subprocess_specs.items()},
        BpmnWorkflowSerializer.VERSION_KEY: SERIALIZER.VERSION,
    }, sort_keys=True, separators=(",", ":"))


def deserialize_specs(text: str) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
    """Restore ``(spec, subprocess_specs)`` from :func:`serialize_specs` output."""
    data = json.loads(text)
    subprocess_specs = {k: SERIALIZER.from_dict(v) for k, v in data.get("subprocess_specs", {}).items()}
    return SERIALIZER.from_dict(data["spec"]), subprocess_specs


def discover_pathways(directory: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """Find pathways in a folder: each ``*.bpmn`` is a main file; ``*.dmn`` and the ``.bpmn``/
    ``.dmn`` files under ``shared/`` are shared by all.

    Returns ``{process_id: (main_file_name, files)}`` (a main file without one readable
    executable process is keyed by its stem; :func:`parse_pathway` then says what is wrong).
    Raises :class:`PathwayInvalid` when two main files define the same process id.
    """
    directory = Path(directory)
    paths = sorted(directory.glob("*.dmn"))
    if (directory / "shared").is_dir():
        paths += sorted(p for p in (directory / "shared").rglob("*")
                        if p.suffix in (".bpmn", ".dmn") and p.is_file())
    shared = {p.relative_to(directory).as_posix(): p.read_text(encoding="utf-8") for p in paths}
    pathways: dict[str, tuple[str, dict[str, str]]] = {}
    for main in sorted(directory.glob("*.bpmn")):
        text = main.read_text(encoding="utf-8")
        process_id = _main_process_id(text) or main.stem
        if process_id in pathways:
            raise PathwayInvalid([SpecProblem(main.name, process_id, f"process '{process_id}' is also "
                                              f"the main process of {pathways[process_id][0]}")])
        pathways[process_id] = (main.name, {main.name: text, **shared})
    return pathways


def _main_process_id(text: str) -> str | None:
    try:
        root = _read_xml(text)
    except etree.XMLSyntaxError:
        return None
    processes = root.iterfind(f"{{{_BPMN_NS}}}process")
    ids = [p.get("id") for p in processes if p.get("isExecutable", "true") == "true"]
    return ids[0] if len(ids) == 1 else None


def content_hash(files: dict[str, str]) -> str:
    """A sha256 hex digest over the sorted (name, text) pairs of a pathway's files."""
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        for part in (name, text):
            data = part.encode("utf-8") if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big") + data)  # length prefix: no ambiguity
    return digest.hexdigest()
