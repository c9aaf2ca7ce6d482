"""Command-line entry points: ``flask --app wsgi seed-demo`` and ``flask --app wsgi pathways ...``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.extensions import db

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
