"""Parse, lint and serialize pathway specs (BPMN + DMN files) with SpiffWorkflow.

A pathway is ``files`` (file name -> XML text): one main ``.bpmn`` file plus shared ``.bpmn``
processes (call activities) and ``.dmn`` decision tables.  Every problem found — XML syntax,
XSD, structure, unsafe or invalid expressions, missing forms, loops — is collected into one
:class:`PathwayInvalid`; a raw lxml or Spiff exception never escapes.
"""

from __future__ import annotations

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
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from app.workflow.lint import SpecProblem, lint_pathway, properties

#: The one serializer for specs and workflow state (the default config fails on Spiff specs).
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

_BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_PREFIXES = {_BPMN_NS: "bpmn:", "http://spiffworkflow.org/bpmn/schema/1.0/core": "spiffworkflow:",
             "http://www.omg.org/spec/DMN/20151101/dmn.xsd": "dmn:",
             "http://www.omg.org/spec/DMN/20180521/MODEL/": "dmn:",
             "https://www.omg.org/spec/DMN/20191111/MODEL/": "dmn:"}
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


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


def parse_pathway(files: dict[str, str], main_file: str, form_keys: set[str] | None = None,
                  operations: set[str] | None = None) -> ParsedPathway:
    """Parse and lint a pathway; raise :class:`PathwayInvalid` with every problem found.

    The main process is the one executable process defined in ``main_file``.  When
    ``form_keys`` is given, every user task's formKey must be one of them; when
    ``operations`` is given, every service task's operator must be one of them.
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
    problems += lint_pathway(spec, subprocess_specs, form_keys, decision_files=decision_files,
                             operations=operations)
    if problems:
        raise PathwayInvalid(problems)
    user_tasks = user_task_infos(spec, subprocess_specs)
    return ParsedPathway(process_id=main_ids[0], title=spec.description or main_ids[0], spec=spec,
                         subprocess_specs=subprocess_specs, user_tasks=user_tasks,
                         form_keys={t.form_key for t in user_tasks if t.form_key})


def user_task_infos(spec: BpmnProcessSpec,
                    subprocess_specs: dict[str, BpmnProcessSpec]) -> list[UserTaskInfo]:
    """The user tasks of a process and of the processes it calls (in parse order)."""
    infos = []
    for process in [spec, *subprocess_specs.values()]:
        for ts in process.task_specs.values():
            if isinstance(ts, UserTask):
                props = properties(ts)
                infos.append(UserTaskInfo(
                    name=ts.bpmn_id, title=ts.bpmn_name or ts.bpmn_id, form_key=props.get("formKey"),
                    lane=ts.lane, process_id=process.name,
                    allow_back=props.get("allowBack", "true").strip().lower() != "false"))
    return infos


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
