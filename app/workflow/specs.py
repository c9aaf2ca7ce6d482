"""Parse, lint and serialize pathway specs (BPMN + DMN files) with SpiffWorkflow.

A pathway is ``files`` (file name -> XML text): one main ``.bpmn`` file plus shared ``.bpmn``
processes (call activities) and ``.dmn`` decision tables.  The checks themselves live in
:mod:`app.workflow.checks` (:func:`parse_pathway` raises their problems as one
:class:`PathwayInvalid`); this module holds what a parsed pathway is, its serialization,
discovery of the pathways in ``workflows/`` and the content hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from app.workflow import xmlsafe
from app.workflow.lint import SpecProblem, lint_pathway, properties

__all__ = [
    "SERIALIZER", "ParsedPathway", "PathwayInvalid", "SpecProblem", "UserTaskInfo", "content_hash",
    "deserialize_specs", "discover_pathways", "lint_pathway", "parse_pathway", "serialize_specs",
    "user_task_infos",
]

#: The one serializer for specs and workflow state (the default config fails on Spiff specs).
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

_BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


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


def parse_pathway(files: dict[str, str], main_file: str, form_keys: set[str] | None = None,
                  operations: set[str] | None = None, *, roles: set[str] | None = None) -> ParsedPathway:
    """Parse and check a pathway; raise :class:`PathwayInvalid` with every problem found.

    The main process is the one executable process defined in ``main_file``.  When
    ``form_keys`` is given, every user task's formKey must be one of them; when
    ``operations`` is given, every service task's operator must be one of them; when
    ``roles`` is given, every user task must sit in a lane named after one of them.
    The checks are those of :func:`app.workflow.checks.check_pathway`.
    """
    from app.workflow.checks import check_pathway

    result = check_pathway(files, main_file, form_keys=form_keys, operations=operations, roles=roles)
    if not result.ok:
        raise PathwayInvalid(result.problems)
    if result.parsed is None:
        raise PathwayInvalid([SpecProblem(main_file, None, "the main file must be a .bpmn file")])
    return result.parsed


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
        root = xmlsafe.read_xml(text)[1]
    except (xmlsafe.UnsafeXml, etree.XMLSyntaxError):
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
