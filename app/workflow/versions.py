"""Pathway versions: check, publish (from workflows/ or the studio), roll back, look up.

Versions are immutable and numbered; the newest is the one new referrals start on. Every
write flushes and never commits: the caller's request (or command) commits once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from lxml import etree
from sqlalchemy import func, select

from app.extensions import db
from app.workflow import service_tasks, xmlsafe
from app.workflow.checks import CheckResult, check_pathway
from app.workflow.lint import SpecProblem
from app.workflow.models import Pathway, PathwayVersion
from app.workflow.specs import PathwayInvalid, content_hash, discover_pathways, serialize_specs


@dataclass(frozen=True)
class PathwayRules:
    """What a pathway may name: the forms in ``forms/``, the registered service-task
    operations and the roles a lane may be (the checks are the same everywhere)."""

    form_keys: set[str]
    operations: set[str]
    roles: set[str]


def pathway_rules() -> PathwayRules:
    from app.auth.models import Role
    from app.formkit import form_keys

    return PathwayRules(set(form_keys()), service_tasks.operations(),
                        {role.value for role in Role if role is not Role.admin})


def check_files(files: dict[str, str | bytes], main_file: str, rules: PathwayRules | None = None,
                max_bytes: int | None = None) -> CheckResult:
    """Every check a pathway must pass (hostile XML, structure, expressions, forms, roles,
    operations, called pathways ...). A process the files call but do not define is looked up
    among the published pathways. Never raises for bad input."""
    rules = rules or pathway_rules()
    limit = max_bytes or current_app.config["PATHWAY_MAX_FILE_BYTES"]
    return check_pathway(files, main_file, form_keys=rules.form_keys, operations=rules.operations,
                         roles=rules.roles, resolve_process=published_process_files, max_bytes=limit)


def published_process_files(process_id: str) -> dict[str, str] | None:
    """Files that define process ``process_id``, for a call activity the files being checked
    do not define: the current version of the pathway ``process_id``, else the current version
    of a pathway that has it among its files (a shared process such as ``consent``); or None."""
    pathway = get_pathway(process_id)
    version = current_version(pathway) if pathway is not None else None
    if version is not None:
        return dict(version.files)
    for other in published_pathways():
        version = current_version(other)
        if any(_defines_process(text, process_id) for name, text in version.files.items() if name.endswith(".bpmn")):
            return dict(version.files)
    return None


def _defines_process(text: str, process_id: str) -> bool:
    if f'"{process_id}"' not in text:  # cheap: most files do not mention it at all
        return False
    try:
        return process_id in xmlsafe.definitions(".bpmn", xmlsafe.parse(text))
    except (ValueError, etree.XMLSyntaxError):
        return False


def publish_files(main_file: str, files: dict[str, str | bytes], *, user=None, source: str = "studio",
                  restores: PathwayVersion | None = None, key: str | None = None) -> PathwayVersion:
    """Check ``files`` and store them as the pathway's next version (flushed).

    Raises :class:`PathwayInvalid` with every problem when a check fails; ``key``, when given,
    is the pathway the main process must be.
    """
    result = check_files(files, main_file)
    if not result.ok:
        raise PathwayInvalid(result.problems)
    if key is not None and result.parsed.process_id != key:
        raise PathwayInvalid([SpecProblem(main_file, result.parsed.process_id,
                                          f"the main process id must stay '{key}'")])
    return _store_version(result.parsed, result.files, main_file, user=user, source=source, restores=restores)


def publish_directory(directory: Path | None = None, form_keys: set[str] | None = None) -> list[PathwayVersion]:
    """Publish the pathways in ``workflows/`` whose files changed since they were last
    published from there. A pathway a coordinator published since in the studio keeps that
    version until its files in ``workflows/`` change.

    All pathways are checked before any is stored: one invalid file publishes nothing, and
    the :class:`PathwayInvalid` raised lists the problems of every pathway.
    """
    directory = Path(directory or current_app.config["WORKFLOWS_DIR"])
    rules = pathway_rules()
    if form_keys is not None:
        rules = PathwayRules(set(form_keys), rules.operations, rules.roles)
    checked, problems = [], []
    for main, files in discover_pathways(directory).values():
        result = check_files(files, main, rules)
        if result.ok:
            checked.append((result, main))
        else:
            problems.extend(result.problems)
    if problems:
        raise PathwayInvalid(problems)
    versions = []
    for result, main in checked:
        pathway = get_pathway(result.parsed.process_id)
        last = _last_from_files(pathway) if pathway is not None else None
        if last is not None and last.content_hash == content_hash(result.files):
            versions.append(current_version(pathway))
        else:
            versions.append(_store_version(result.parsed, result.files, main, source="files"))
    return versions


def _last_from_files(pathway: Pathway) -> PathwayVersion | None:
    return max((v for v in pathway.versions if v.source == "files"), key=lambda v: v.number, default=None)


def rollback(version: PathwayVersion, user) -> PathwayVersion:
    """Publish an earlier version's files again, as a new version. They are checked again
    first: a form or operation they name may have gone since (then :class:`PathwayInvalid`)."""
    return publish_files(main_file_of(version), dict(version.files), user=user,
                         source="rollback", restores=version, key=version.pathway.key)


def main_file_of(version: PathwayVersion) -> str:
    """The file holding the version's main process (recorded since the studio; guessed before)."""
    if version.main_file:
        return version.main_file
    mains = [name for name in version.files if name.endswith(".bpmn") and "/" not in name]
    return mains[0] if len(mains) == 1 else f"{version.pathway.key}.bpmn"


def _store_version(parsed, files: dict[str, str], main_file: str, *, user=None, source: str = "files",
                   restores: PathwayVersion | None = None) -> PathwayVersion:
    pathway = get_pathway(parsed.process_id)
    if pathway is None:
        pathway = Pathway(key=parsed.process_id, title=parsed.title)
        db.session.add(pathway)
        db.session.flush()
    number = (db.session.scalar(
        select(func.max(PathwayVersion.number)).where(PathwayVersion.pathway_id == pathway.id)
    ) or 0) + 1
    pathway.title = parsed.title
    version = PathwayVersion(
        pathway=pathway, number=number, files=files, content_hash=content_hash(files),
        spec_json=serialize_specs(parsed), form_keys=sorted(parsed.form_keys), main_file=main_file,
        published_by_id=getattr(user, "id", None), source=source,
        restores_number=restores.number if restores is not None else None,
    )
    db.session.add(version)
    db.session.flush()
    return version


def current_version(pathway: Pathway) -> PathwayVersion | None:
    """The version new referrals start on: the newest."""
    return max(pathway.versions, key=lambda v: v.number, default=None)


def published_pathways() -> list[Pathway]:
    """Pathways with at least one published version, by title."""
    query = select(Pathway).where(Pathway.versions.any()).order_by(Pathway.title)
    return list(db.session.scalars(query))


def get_pathway(key: str) -> Pathway | None:
    return db.session.scalar(select(Pathway).where(Pathway.key == key))

