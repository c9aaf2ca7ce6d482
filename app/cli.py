"""Command-line entry points: ``flask --app wsgi seed-demo`` and ``flask --app wsgi pathways ...``
(``publish``, ``validate FILE ...``)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app.extensions import db
from app.workflow.xmlsafe import DEFAULT_MAX_BYTES

pathways_cli = AppGroup("pathways", help="Publish and inspect referral pathways.")


@pathways_cli.command("publish")
def publish_command() -> None:
    """Publish every pathway in workflows/ (unchanged ones keep their version)."""
    from app.workflow import services

    try:
        versions = services.publish_directory()
    except services.PathwayInvalid as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    for v in versions:
        click.echo(f"{v.pathway.key}: version {v.number} ({v.content_hash[:12]})")


@pathways_cli.command("validate")
@click.argument("paths", metavar="FILE [FILE ...]", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate_command(paths: tuple[Path, ...]) -> None:
    """Check pathway files with the checks of publishing and of the studio.

    The first FILE is the main file: a .bpmn pathway, checked together with the other FILEs
    and what WORKFLOWS_DIR offers (its DMN tables, and the processes of its .bpmn files for
    call activities); or a .dmn file, whose decision tables alone are checked. Prints each
    problem as FILE:ELEMENT_ID (ELEMENT NAME): MESSAGE and exits with 1 when there is one.
    """
    from app.auth.models import Role
    from app.formkit import form_keys
    from app.workflow import service_tasks
    from app.workflow.checks import WorkflowsFolder, check_pathway, display_path

    limit = current_app.config.get("PATHWAY_MAX_FILE_BYTES") or DEFAULT_MAX_BYTES
    checked = {display_path(path): path.read_bytes() for path in paths}
    main = display_path(paths[0])
    folder = WorkflowsFolder(Path(current_app.config["WORKFLOWS_DIR"]), exclude=paths, max_bytes=limit)
    if main.endswith(".dmn"):
        files, resolve = checked, None
    else:
        files, resolve = {**folder.decision_files(checked), **checked}, folder.resolve
    result = check_pathway(files, main, form_keys=form_keys(), operations=service_tasks.operations(),
                           roles={role.value for role in Role if role is not Role.admin},
                           resolve_process=resolve, max_bytes=limit)
    for problem in result.problems:
        click.echo(str(problem))
    if not result.ok:
        click.get_current_context().exit(1)
    if result.parsed is None:
        click.echo(f"OK: {', '.join(result.decision_ids)} ({_count(len(result.decision_ids), 'decision table')})")
    else:
        parsed = result.parsed
        click.echo(f"OK: {parsed.process_id} ({_count(len(parsed.user_tasks), 'user task')}, "
                   f"{_count(len(parsed.subprocess_specs), 'sub-process', 'sub-processes')}, "
                   f"{_count(len(result.files), 'file')})")


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Load demo organisations, users for every role and the demo pathways (idempotent)."""
    from app.demo import seed_demo

    summary = seed_demo()
    db.session.commit()
    click.echo(summary)


def register(app: Flask) -> None:
    from app.directory.cli import directory_cli
    from app.sms.cli import worker_command

    app.cli.add_command(pathways_cli)
    app.cli.add_command(directory_cli)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(worker_command)
