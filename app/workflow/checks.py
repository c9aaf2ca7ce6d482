"""Every check a pathway must pass, in one place: on upload, in the studio editor when a
draft is saved, and in ``flask --app wsgi pathways validate FILE``.

:func:`check_pathway` takes the files as uploaded (text or bytes), never raises for bad
input, and returns a :class:`CheckResult`: the parsed pathway when everything passed, the
list of problems otherwise (each naming the file, the element id and the element's name, so
the editor can highlight it), and the decoded files.

In order:

* hostile XML: size limit, UTF-8 only, no DTD/entities/XInclude (:mod:`app.workflow.xmlsafe`);
  SpiffWorkflow only ever gets the already parsed, safe tree;
* XML syntax, the BPMN and DMN schemas (XSD), SpiffWorkflow's structure checks;
* one executable process in the main file; every called process exists (one the files do
  not define is asked of ``resolve_process``: the studio looks among published pathways);
  every called decision exists;
* the lint (:mod:`app.workflow.lint`): the safe-expression whitelist on every expression,
  ISO 8601 timer literals, each user task's form and role (lane), each service task's
  operation, default flows on exclusive gateways, no back-edge loops, a catch-all rule in
  every UNIQUE decision table.

A main file ending in ``.dmn`` checks decision tables only (schema, expressions, catch-all).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from app.workflow import xmlsafe
from app.workflow.lint import SpecProblem, lint_decision_tables, lint_pathway
from app.workflow.specs import ParsedPathway, user_task_infos

#: ``resolve_process(process_id)`` -> files (name -> XML) among which one defines that process
#: (and, optionally, the .dmn files it uses), or None when there is no such process.
ResolveProcess = Callable[[str], dict[str, str | bytes] | None]

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DMN_NAMESPACES = ("http://www.omg.org/spec/DMN/20151101/dmn.xsd", "http://www.omg.org/spec/DMN/20180521/MODEL/",
                  "https://www.omg.org/spec/DMN/20191111/MODEL/")
_PREFIXES = {BPMN_NS: "bpmn:", "http://spiffworkflow.org/bpmn/schema/1.0/core": "spiffworkflow:",
             **dict.fromkeys(DMN_NAMESPACES, "dmn:")}


@dataclass
class CheckResult:
    """What :func:`check_pathway` found.

    ``parsed`` is set only when there is no problem (and the main file is a .bpmn);
    ``files`` holds the decoded text of every readable file (within the size limit, UTF-8),
    including those added from ``resolve_process``: what to store when ``ok``;
    ``decision_ids`` lists the decisions defined by the files.
    """

    parsed: ParsedPathway | None
    problems: list[SpecProblem]
    files: dict[str, str]
    decision_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def problems_as_dicts(problems: Iterable[SpecProblem]) -> list[dict[str, str | None]]:
    """JSON-ready problems for the editor: ``file``, ``element_id``, ``element_name``, ``message``."""
    return [{"file": p.file, "element_id": p.element_id, "element_name": p.element_name, "message": p.message}
            for p in problems]


def check_pathway(files: dict[str, str | bytes], main_file: str, *, form_keys: set[str] | None = None,
                  operations: set[str] | None = None, roles: set[str] | None = None,
                  resolve_process: ResolveProcess | None = None,
                  max_bytes: int = xmlsafe.DEFAULT_MAX_BYTES) -> CheckResult:
    """Check a pathway: ``files`` (name -> XML text or bytes) with ``main_file`` among them.

    ``form_keys``, ``operations`` and ``roles``, when given, are the only form keys,
    service-task operations and lane names allowed (None: not checked). ``max_bytes`` is the
    largest file accepted. Exceptions raised by ``resolve_process`` propagate; bad input never
    raises.
    """
    check = _Check(max_bytes, resolve_process)
    if main_file not in files:
        check.problem(main_file, None, "main file is missing")
        return check.result(None)
    for name in sorted(files):
        check.add_file(name, files[name])
    if main_file.endswith(".dmn"):
        check.problems += lint_decision_tables(*check.decision_tables())
        return check.result(None)
    return check.result(check.pathway(main_file, form_keys, operations, roles))


class _Parser(SpiffBpmnParser):
    """Spiff's parser; a missing decision is looked for among resolved files, then reported clearly."""

    def __init__(self, find_decision: Callable[[str], None]) -> None:
        super().__init__(validator=VALIDATOR)
        self.find_decision = find_decision

    def get_engine(self, decision_ref: str | None, node: Any) -> Any:
        if decision_ref and decision_ref not in self.dmn_parsers:
            self.find_decision(decision_ref)
        if decision_ref not in self.dmn_parsers:
            message = (f"decision '{decision_ref}' is not defined in any .dmn file" if decision_ref
                       else "business rule task has no decision: set its Decision ID")
            raise ValidationException(message, node=node)
        return super().get_engine(decision_ref, node)


class _Bundle:
    """Files offered by ``resolve_process``, indexed by the processes and decisions they define;
    a file is added to the pathway only when something it defines is needed."""

    def __init__(self, files: dict[str, str | bytes], max_bytes: int) -> None:
        self.files, self.added = files, set()
        self.processes: dict[str, str] = {}
        self.decisions: dict[str, str] = {}
        for name, data in sorted(files.items()):
            try:
                root = xmlsafe.read_xml(data, max_bytes)[1]
            except (xmlsafe.UnsafeXml, etree.XMLSyntaxError):
                continue  # never added, so never a problem of this pathway
            index = self.decisions if name.endswith(".dmn") else self.processes
            for defined in xmlsafe.definitions(name, root):
                index.setdefault(defined, name)


class _Check:
    def __init__(self, max_bytes: int, resolve_process: ResolveProcess | None) -> None:
        self.max_bytes, self.resolve_process = max_bytes, resolve_process
        self.parser = _Parser(self.find_decision)
        self.problems: list[SpecProblem] = []
        self.files: dict[str, str] = {}
        self.taken: set[str] = set()  # every file name seen, readable or not
        self.names: dict[str, dict[str, str]] = {}  # file -> element id -> name
        self.flows: dict[str | None, dict[tuple[str, str], str]] = {}  # file -> (source, target) -> flow id
        self.decision_files: dict[str, str] = {}  # decision id -> file
        self.bundles: list[_Bundle] = []
        self.asked: set[str] = set()

    def problem(self, file: str | None, element_id: str | None, message: str) -> None:
        self.problems.append(SpecProblem(file, element_id, message))

    # -- reading files ---------------------------------------------------------------------

    def add_file(self, name: str, data: str | bytes) -> None:
        """Read one file safely and hand its parsed tree to SpiffWorkflow."""
        self.taken.add(name)
        if not name.endswith((".bpmn", ".dmn")):
            self.problem(name, None, "unsupported file type (expected .bpmn or .dmn)")
            return
        try:
            text = self.files[name] = xmlsafe.decode(data, self.max_bytes)
            root = xmlsafe.parse(text)
        except xmlsafe.UnsafeXml as exc:
            self.problem(name, None, str(exc))
            return
        except etree.XMLSyntaxError as exc:
            self.problem(name, None, f"XML syntax error at line {exc.lineno}: {exc.msg}")
            return
        self.names[name] = xmlsafe.element_names(root)
        self.flows[name] = {}
        for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
            self.flows[name].setdefault((flow.get("sourceRef"), flow.get("targetRef")), flow.get("id"))
        try:
            if name.endswith(".dmn"):
                self.add_dmn(name, root)
            else:
                self.parser.add_bpmn_xml(root, filename=name)
        except ValidationException as exc:
            self.problems.append(_from_validation(exc, name))
        except Exception as exc:  # a malformed upload must never escape as a raw error
            self.problem(name, None, f"the file could not be read: {exc!r}")

    def add_dmn(self, name: str, root: etree._Element) -> None:
        namespace = etree.QName(root).namespace
        if namespace not in DMN_NAMESPACES:
            self.problem(name, None, "not a DMN file: expected <definitions> in the DMN 1.1, 1.2 or 1.3 namespace")
            return
        ids = [decision.get("id") for decision in root.iterfind(f"{{{namespace}}}decision")]
        if len(ids) != 1:
            self.problem(name, None, "a .dmn file must define exactly one decision, "
                                     f"this one defines {len(ids)}{_listed(ids)}")
            return
        if ids[0] in self.decision_files:
            self.problem(name, ids[0], f"decision '{ids[0]}' is also defined in {self.decision_files[ids[0]]}")
            return
        self.parser.add_dmn_xml(root, filename=name)  # Spiff replaces a same-id decision silently
        self.decision_files[ids[0]] = name

    # -- called processes and decisions the files do not define ---------------------------

    def resolve(self, process_id: str) -> None:
        """Add the file defining ``process_id`` from what ``resolve_process`` offers."""
        for bundle in self.bundles:
            if process_id in bundle.processes:
                self.add_from(bundle, bundle.processes[process_id])
                return
        if self.resolve_process is None or process_id in self.asked:
            return
        self.asked.add(process_id)
        offered = self.resolve_process(process_id)
        if offered:
            bundle = _Bundle(dict(offered), self.max_bytes)
            self.bundles.append(bundle)
            if process_id in bundle.processes:
                self.add_from(bundle, bundle.processes[process_id])

    def find_decision(self, decision_id: str) -> None:
        for bundle in self.bundles:
            if decision_id in bundle.decisions:
                self.add_from(bundle, bundle.decisions[decision_id])
                return

    def add_from(self, bundle: _Bundle, name: str) -> None:
        if name in bundle.added:
            return
        bundle.added.add(name)
        target, number = name, 1
        while target in self.taken:  # a file of the pathway already has that name
            target, number = f"called/{number}/{name}" if number > 1 else f"called/{name}", number + 1
        self.add_file(target, bundle.files[name])

    # -- the pathway -------------------------------------------------------------------------

    def pathway(self, main_file: str, form_keys: set[str] | None, operations: set[str] | None,
                roles: set[str] | None) -> ParsedPathway | None:
        main_ids = [pid for pid, pp in self.parser.process_parsers.items()
                    if pp.filename == main_file and pp.process_executable]
        if len(main_ids) != 1:
            if not any(p.file == main_file for p in self.problems):
                self.problem(main_file, None, "expected exactly one executable process in the main file, "
                                              f"found {len(main_ids)}{_listed(main_ids)}")
            return None
        try:
            spec = self.parser.get_spec(main_ids[0])
        except ValidationException as exc:
            self.problems.append(_from_validation(exc, main_file))
            return None
        except Exception as exc:
            self.problem(main_file, main_ids[0], f"the process could not be read: {exc!r}")
            return None
        subprocess_specs = self.subprocesses(spec)
        tables, decision_files = self.decision_tables()
        self.problems += lint_pathway(spec, subprocess_specs, form_keys, decision_files=decision_files,
                                      operations=operations, roles=roles, decision_tables=tables,
                                      sequence_flows=self.flows)
        user_tasks = user_task_infos(spec, subprocess_specs)
        return ParsedPathway(process_id=main_ids[0], title=spec.description or main_ids[0], spec=spec,
                             subprocess_specs=subprocess_specs, user_tasks=user_tasks,
                             form_keys={t.form_key for t in user_tasks if t.form_key})

    def subprocesses(self, spec: BpmnProcessSpec) -> dict[str, BpmnProcessSpec]:
        """The specs of every process ``spec`` calls, directly or not (and embedded sub-processes)."""
        found: dict[str, BpmnProcessSpec] = {}
        pending, failed = [spec], set()
        while pending:
            current = pending.pop()
            for ts in current.task_specs.values():
                if not isinstance(ts, SubWorkflowTask) or ts.spec in found or ts.spec in failed:
                    continue
                if self.parser.get_process_parser(ts.spec) is None:
                    self.resolve(ts.spec)
                process_parser = self.parser.get_process_parser(ts.spec)
                if process_parser is None:
                    failed.add(ts.spec)
                    self.problem(current.file, ts.bpmn_id, f"called process '{ts.spec}' was not found: no file "
                                 "defines it; check the called element's process id")
                    continue
                try:
                    found[ts.spec] = self.parser.get_spec(ts.spec)
                    pending.append(found[ts.spec])
                except ValidationException as exc:
                    failed.add(ts.spec)
                    self.problems.append(_from_validation(exc, process_parser.filename))
                except Exception as exc:
                    failed.add(ts.spec)
                    self.problem(process_parser.filename, ts.spec, f"the process could not be read: {exc!r}")
        return found

    def decision_tables(self) -> tuple[list[Any], dict[str, str]]:
        """Every decision table of the files (called or not), and table id -> file."""
        tables, files = [], {}
        for dmn in self.parser.dmn_parsers.values():
            try:
                if dmn.decision is None:
                    dmn.parse()
            except ValidationException as exc:
                self.problems.append(_from_validation(exc, dmn.filename))
                continue
            except Exception as exc:
                self.problem(dmn.filename, None, f"the decision could not be read: {exc!r}")
                continue
            for table in dmn.decision.decisionTables:
                tables.append(table)
                files[table.id] = dmn.filename
        return tables, files

    # -- the result --------------------------------------------------------------------------

    def result(self, parsed: ParsedPathway | None) -> CheckResult:
        problems: list[SpecProblem] = []
        for problem in self.problems:
            if problem in problems:
                continue
            if problem.element_id and problem.element_name is None:
                problem.element_name = self.name_of(problem.file, problem.element_id)
            problems.append(problem)
        return CheckResult(parsed=None if problems else parsed, problems=problems, files=dict(self.files),
                           decision_ids=sorted(self.decision_files))

    def name_of(self, file: str | None, element_id: str) -> str | None:
        if file in self.names:
            return self.names[file].get(element_id)
        found = {names[element_id] for names in self.names.values() if element_id in names}
        return found.pop() if len(found) == 1 else None


def _listed(ids: list[str]) -> str:
    return f" ({', '.join(sorted(ids))})" if ids else ""


def _from_validation(exc: ValidationException, default_file: str | None) -> SpecProblem:
    message = str(exc.args[0]) if exc.args else str(exc)
    message = re.sub(r"\{([^}]*)\}", lambda m: _PREFIXES.get(m[1], ""), message)
    if getattr(exc, "line_number", None):
        message += f" (line {exc.line_number})"
    return SpecProblem(exc.file_name or default_file, getattr(exc, "id", None) or None, message,
                       element_name=getattr(exc, "name", None) or None)


class WorkflowsFolder:
    """A ``workflows/`` folder as the source of what checked files may call, for checking
    files that are not (yet) published: its DMN tables and its processes (``*.bpmn`` and
    ``shared/**``), skipping the files being checked themselves.

    File names are the paths as :func:`display_path` shows them.
    """

    def __init__(self, directory: Path, exclude: Iterable[Path] = (), max_bytes: int = xmlsafe.DEFAULT_MAX_BYTES):
        self.directory, self.max_bytes = Path(directory), max_bytes
        self.exclude = {Path(p).resolve() for p in exclude}
        self._processes: dict[str, Path] | None = None

    def _paths(self, suffix: str) -> list[Path]:
        paths = sorted(self.directory.glob(f"*{suffix}"))
        if (self.directory / "shared").is_dir():
            paths += sorted(p for p in (self.directory / "shared").rglob(f"*{suffix}") if p.is_file())
        return [p for p in paths if p.resolve() not in self.exclude]

    def _ids(self, path: Path, tag: str) -> list[str]:
        try:
            root = xmlsafe.read_xml(path.read_bytes(), self.max_bytes)[1]
        except (OSError, xmlsafe.UnsafeXml, etree.XMLSyntaxError):
            return []
        return [element.get("id") for element in root.iterfind(tag) if element.get("id")]

    def decision_files(self, checked: dict[str, str | bytes]) -> dict[str, bytes]:
        """The folder's .dmn files, except those defining a decision one of ``checked`` defines."""
        defined: set[str] = set()
        for name, data in checked.items():
            if name.endswith(".dmn"):
                try:
                    root = xmlsafe.read_xml(data, self.max_bytes)[1]
                except (xmlsafe.UnsafeXml, etree.XMLSyntaxError):
                    continue
                defined.update(d.get("id") for d in root.iterfind("{*}decision"))
        return {display_path(p): p.read_bytes() for p in self._paths(".dmn")
                if not defined.intersection(self._ids(p, "{*}decision"))}

    def resolve(self, process_id: str) -> dict[str, bytes] | None:
        """A :data:`ResolveProcess`: the folder's file defining ``process_id``."""
        if self._processes is None:
            self._processes = {}
            for path in self._paths(".bpmn"):
                for found in self._ids(path, f"{{{BPMN_NS}}}process"):
                    self._processes.setdefault(found, path)
        path = self._processes.get(process_id)
        return {display_path(path): path.read_bytes()} if path is not None else None


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()
