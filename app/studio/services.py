"""The studio's rules: drafts, checks, publication, rollback — each change audited.

Only coordinators and admins reach these (routes check the role; :func:`can_edit_pathways`
is the one rule). Every write flushes; the request commits once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from flask import current_app
from lxml import etree
from sqlalchemy import select

from app.audit.services import record_event
from app.auth.models import Role
from app.core.db import utcnow
from app.extensions import db
from app.studio import blank
from app.studio.changes import Change, describe_changes
from app.studio.models import PathwayDraft
from app.workflow import services as workflow
from app.workflow.models import Pathway, PathwayVersion

#: A pathway key is its main process id: lower case, digits and underscores.
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{2,59}$")


class DraftConflict(Exception):
    """Someone saved the draft since the caller loaded it; nothing was saved."""

    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


class FileRefused(Exception):
    """The file cannot be stored at all (too big, not XML, hostile); ``problems`` say why."""

    def __init__(self, problems: list) -> None:
        super().__init__(problems)
        self.problems = problems


class BadRequest(ValueError):
    """A request the studio cannot act on (an unknown file, a taken key); the message says why."""


@dataclass
class PathwayRow:
    pathway: Pathway
    current: PathwayVersion | None
    draft: PathwayDraft | None


def can_edit_pathways(user) -> bool:
    """Coordinators and admins edit, check, test-run, publish and roll back pathways."""
    return bool(user and user.is_authenticated and user.role in (Role.coordinator, Role.admin))


def overview() -> list[PathwayRow]:
    """Every pathway (published or only drafted), with its current version and draft."""
    drafts = {d.pathway_id: d for d in db.session.scalars(select(PathwayDraft))}
    pathways = db.session.scalars(select(Pathway).order_by(Pathway.title))
    return [PathwayRow(p, workflow.current_version(p), drafts.get(p.id)) for p in pathways]


def draft_for(pathway: Pathway) -> PathwayDraft | None:
    return db.session.scalar(select(PathwayDraft).where(PathwayDraft.pathway_id == pathway.id))


def start_draft(pathway: Pathway, user, version: PathwayVersion | None = None) -> PathwayDraft:
    """The pathway's draft; a new one starts from ``version`` (default: the current one)."""
    draft = draft_for(pathway)
    if draft is not None:
        return draft
    version = version or workflow.current_version(pathway)
    if version is None:
        raise BadRequest("this pathway has no version to start from")
    draft = PathwayDraft(pathway=pathway, files=dict(version.files), base_version=version,
                         main_file=workflow.main_file_of(version), updated_by_id=user.id)
    db.session.add(draft)
    db.session.flush()
    record_event("studio.draft_started", user=user, detail={"pathway": pathway.key, "from_version": version.number})
    return draft


def new_pathway(key: str, title: str, user, copy_from: Pathway | None = None) -> PathwayDraft:
    """A new pathway, unpublished: a blank diagram, or a copy of another pathway's current
    version with its main process renamed to ``key``."""
    key, title = key.strip(), title.strip()
    if not KEY_PATTERN.fullmatch(key):
        raise BadRequest("use 3 to 60 lower-case letters, digits or underscores, starting with a letter")
    if workflow.get_pathway(key) is not None or workflow.published_process_files(key) is not None:
        raise BadRequest(f"a pathway '{key}' already exists")
    if copy_from is not None:
        source = workflow.current_version(copy_from)
        if source is None:
            raise BadRequest(f"'{copy_from.key}' has no published version to copy")
        main = workflow.main_file_of(source)
        files = {name: text for name, text in source.files.items() if name != main}
        files[f"{key}.bpmn"] = blank.renamed(source.files[main], copy_from.key, key, title)
    else:
        files = {f"{key}.bpmn": blank.diagram(key, title)}
    pathway = Pathway(key=key, title=title)
    db.session.add(pathway)
    draft = PathwayDraft(pathway=pathway, files=files, main_file=f"{key}.bpmn", updated_by_id=user.id)
    db.session.add(draft)
    db.session.flush()
    record_event("studio.pathway_created", user=user,
                 detail={"pathway": key, "copied_from": copy_from.key if copy_from else None})
    return draft


def check_draft(draft: PathwayDraft, replace: tuple[str, str | bytes] | None = None) -> workflow.CheckResult:
    """Every check, on the draft's files (with one file replaced, when given)."""
    files = dict(draft.files)
    if replace is not None:
        files[replace[0]] = replace[1]
    result = workflow.check_files(files, draft.main_file)
    if result.parsed is not None and result.parsed.process_id != draft.pathway.key:
        result.problems.append(workflow.SpecProblem(draft.main_file, result.parsed.process_id,
                                                    f"the main process id must stay '{draft.pathway.key}'"))
    return result


def _refusals(name: str, result: workflow.CheckResult) -> list:
    """The problems of file ``name`` when it cannot be kept at all: refused unread (too big,
    not UTF-8, a DTD or entities) or not well-formed XML. Empty when the file can be kept."""
    text = result.files.get(name)
    if text is not None:
        try:
            blank.parse_stored(text)
            return []
        except (etree.XMLSyntaxError, ValueError):
            pass
    return [p for p in result.problems if p.file == name] or [
        workflow.SpecProblem(name, None, "the file is not readable XML")]


def save_file(draft: PathwayDraft, name: str, xml: str | bytes, revision: int, user) -> workflow.CheckResult:
    """Store one file of the draft and return the draft's problems (a draft may have some).

    Raises :class:`DraftConflict` when the draft moved on since ``revision`` and
    :class:`FileRefused` when the file is too big, not XML or hostile; nothing is saved then.
    """
    if name not in draft.files:
        raise BadRequest(f"the draft has no file '{name}'")
    if revision != draft.revision:
        raise DraftConflict(draft.revision)
    return _store(draft, name, xml, user, "studio.file_saved")


def upload_file(draft: PathwayDraft, filename: str, data: bytes, user) -> workflow.CheckResult:
    """Add a ``.bpmn``/``.dmn`` file to the draft, or replace the file of the same name."""
    base = PurePosixPath((filename or "").replace("\\", "/")).name
    if not base.endswith((".bpmn", ".dmn")):
        raise BadRequest("upload a .bpmn or .dmn file")
    same = [name for name in draft.files if PurePosixPath(name).name == base]
    name = same[0] if same else base
    return _store(draft, name, data, user, "studio.file_uploaded")


def _store(draft: PathwayDraft, name: str, xml: str | bytes, user, action: str) -> workflow.CheckResult:
    result = check_draft(draft, (name, xml))
    refused = _refusals(name, result)
    if refused:
        raise FileRefused(refused)
    files = dict(draft.files)
    files[name] = result.files[name]
    draft.files, draft.revision = files, draft.revision + 1
    draft.updated_by_id, draft.updated_at = user.id, utcnow()
    db.session.flush()
    record_event(action, user=user, detail={"pathway": draft.pathway.key, "file": name,
                                            "revision": draft.revision, "problems": len(result.problems)})
    return result


def publish_draft(draft: PathwayDraft, user) -> PathwayVersion:
    """Publish the draft as the pathway's next version; the draft is done with.

    Raises :class:`workflow.PathwayInvalid` (every problem) when a check fails.
    """
    version = workflow.publish_files(draft.main_file, dict(draft.files), user=user, source="studio",
                                     key=draft.pathway.key)
    record_event("studio.published", user=user, detail={"pathway": draft.pathway.key, "version": version.number})
    db.session.delete(draft)
    db.session.flush()
    return version


def discard_draft(draft: PathwayDraft, user) -> None:
    record_event("studio.draft_discarded", user=user, detail={"pathway": draft.pathway.key})
    pathway = draft.pathway
    db.session.delete(draft)
    if not pathway.versions:  # a new pathway never published: nothing is left of it
        db.session.delete(pathway)
    db.session.flush()


def rollback(version: PathwayVersion, user) -> PathwayVersion:
    """Publish ``version``'s files again as the newest version (checked again first)."""
    restored = workflow.rollback(version, user)
    record_event("studio.rolled_back", user=user,
                 detail={"pathway": version.pathway.key, "version": restored.number, "restores": version.number})
    return restored


def get_version(pathway: Pathway, number: int) -> PathwayVersion | None:
    return db.session.scalar(select(PathwayVersion).where(PathwayVersion.pathway_id == pathway.id,
                                                          PathwayVersion.number == number))


def version_changes(version: PathwayVersion) -> list[Change]:
    """What changed from the previous version (everything is new in the first)."""
    previous = get_version(version.pathway, version.number - 1)
    return describe_changes(previous.files if previous else None, version.files)


def draft_changes(draft: PathwayDraft) -> list[Change]:
    """What publishing the draft would change against the current version."""
    current = workflow.current_version(draft.pathway)
    return describe_changes(current.files if current else None, draft.files)


def editor_choices(draft: PathwayDraft) -> dict:
    """What the editor's properties panel offers: forms, roles, operations, processes, decisions."""
    from app.formkit import get_definition

    rules = workflow.pathway_rules()
    forms = [{"key": key, "title": getattr(get_definition(key), "title", key)} for key in sorted(rules.form_keys)]
    roles = [{"value": role.value, "title": str(role.title)} for role in Role if role.value in rules.roles]
    operations = [{"name": name, "title": name} for name in sorted(rules.operations)]
    defined = blank.defined_ids(draft.files)
    pathways = {p.key: p.title for p in workflow.published_pathways() if p.key != draft.pathway.key}
    processes = {**defined["processes"], **pathways}
    processes.pop(draft.pathway.key, None)
    return {
        "form_keys": forms, "roles": roles, "operations": operations,
        "call_targets": [{"id": pid, "title": title} for pid, title in sorted(processes.items())],
        "decisions": [{"id": did, "title": title} for did, title in sorted(defined["decisions"].items())],
    }


def max_file_bytes() -> int:
    return current_app.config["PATHWAY_MAX_FILE_BYTES"]


def publisher(version: PathwayVersion):
    """Who published ``version`` (None: published from ``workflows/`` by the CLI)."""
    from app.auth.models import User

    return db.session.get(User, version.published_by_id) if version.published_by_id else None


def history(pathway: Pathway, limit: int = 50) -> list:
    """The studio's audit events for ``pathway``, newest first."""
    from app.audit.models import AuditEvent

    query = (select(AuditEvent).where(AuditEvent.action.like("studio.%"))
             .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit * 20))
    return [e for e in db.session.scalars(query) if (e.detail or {}).get("pathway") == pathway.key][:limit]
