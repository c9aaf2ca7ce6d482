"""``flask --app wsgi directory export|import|places``: the directory from the command line."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import force_locale

from app.extensions import db

directory_cli = AppGroup("directory", help="Import, export and set up the service directory.")


def _default_locale():
    """Messages in the default language: there is no request to choose one from."""
    return force_locale(current_app.config["BABEL_DEFAULT_LOCALE"])


@directory_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def export_command(path: Path) -> None:
    """Write every service to the CSV file PATH."""
    from app.directory.csv_io import export_services
    from app.directory.services import services_query

    selection = list(db.session.scalars(services_query()))
    path.write_text(export_services(selection), encoding="utf-8", newline="")
    click.echo(f"{len(selection)} services written to {path}")


@directory_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(path: Path) -> None:
    """Create or update services from the CSV file PATH; with any error, nothing is written."""
    from app.directory.csv_io import CsvImportError, import_services

    with _default_locale():
        try:
            summary = import_services(path.read_bytes())
        except CsvImportError as exc:
            db.session.rollback()
            for error in exc.errors:
                click.echo(error, err=True)
            raise click.ClickException(f"{len(exc.errors)} problem(s) found; nothing was imported.") from None
        db.session.commit()
        click.echo(str(summary))


@directory_cli.command("places")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def places_command(path: Path) -> None:
    """Create or update places from the YAML file PATH (country -> regions -> municipalities)."""
    from app.directory.places import PlacesFileError, load_places

    try:
        loaded = load_places(path)
    except PlacesFileError as exc:
        db.session.rollback()
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.ClickException("the places file is invalid; nothing was loaded.") from None
    db.session.commit()
    click.echo(f"places: {loaded.created} created, {loaded.updated} updated, {loaded.unchanged} unchanged")
