"""``flask directory places|import|export`` through Flask's CLI runner."""

from __future__ import annotations

from sqlalchemy import func, select

from app.directory.demo import DIRECTORY_FILE, PLACES_FILE
from app.directory.models import Place, Service
from app.extensions import db


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


def test_places_import_and_export_round_trip(app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["directory", "places", str(PLACES_FILE)])
    assert result.exit_code == 0, result.output
    assert "places: 18 created, 0 updated, 0 unchanged" in result.output
    result = runner.invoke(args=["directory", "places", str(PLACES_FILE)])
    assert "places: 0 created, 0 updated, 18 unchanged" in result.output

    result = runner.invoke(args=["directory", "import", str(DIRECTORY_FILE)])
    assert result.exit_code == 0, result.output
    services = _count(app, Service)
    assert services >= 60 and f"{services} services imported or updated, 0 unchanged." in result.output

    exported = tmp_path / "out.csv"
    result = runner.invoke(args=["directory", "export", str(exported)])
    assert result.exit_code == 0 and f"{services} services written" in result.output
    data = exported.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfservice_id,organization_name,") and b"\r\n" in data
    result = runner.invoke(args=["directory", "import", str(exported)])
    assert result.exit_code == 0, result.output
    assert f"0 services imported or updated, {services} unchanged." in result.output


def test_a_bad_import_prints_every_row_error_exits_non_zero_and_writes_nothing(app, tmp_path):
    app.test_cli_runner().invoke(args=["directory", "places", str(PLACES_FILE)])
    lines = DIRECTORY_FILE.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("+584120000101", "+0")
    lines[4] = lines[4].replace("ve/distrito-capital/caracas", "ve/atlantis")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["directory", "import", str(bad)])
    assert result.exit_code != 0
    assert "row 4, sms_phone: not a valid E.164 number" in result.output
    assert "row 5, service_areas: unknown place codes: ve/atlantis" in result.output
    assert "2 problem(s) found; nothing was imported." in result.output
    assert _count(app, Service) == 0


def test_a_broken_places_file_loads_nothing(app, tmp_path):
    broken = tmp_path / "places.yaml"
    broken.write_text("countries:\n  - {code: 'Not A Slug', name: X}\n  - {code: ok, name: Fine, colour: red}\n")
    result = app.test_cli_runner().invoke(args=["directory", "places", str(broken)])
    assert result.exit_code != 0
    assert "countries[0].code: 'Not A Slug' is not a slug" in result.output
    assert "countries[1]: unknown keys colour" in result.output
    assert _count(app, Place) == 0
