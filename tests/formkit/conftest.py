"""Fixtures for the forms server: a minimal Flask app (no database) named ``formkit_app``."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect, generate_csrf

from app import formkit
from app.formkit import BoundForm, FormDefinition, build_form

REPO = Path(__file__).resolve().parents[2]
FORMS_DIR = REPO / "forms"


def make_app(forms_dir: Path, translations: Path | None = None) -> Flask:
    """A bare app with CSRF, Babel and formkit, like the real one but without a database."""
    app = Flask("formkit_test", root_path=str(REPO / "app"))
    app.config.update(
        SECRET_KEY="formkit-test-secret",
        WTF_CSRF_ENABLED=True,
        FORMS_DIR=str(forms_dir),
        BABEL_DEFAULT_LOCALE="en",
    )
    if translations is not None:
        app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(translations)
    Babel(app)
    CSRFProtect(app)
    formkit.init_app(app)
    return app


@pytest.fixture(autouse=True)
def _only_file_choice_lists():
    """Formkit is tested on its own: lists registered in code by the app are set aside."""
    from app.formkit import choices

    saved = dict(choices._SOURCES)
    choices._SOURCES.clear()
    yield
    choices._SOURCES.clear()
    choices._SOURCES.update(saved)


@pytest.fixture
def forms_dir(tmp_path: Path) -> Path:
    """The demo form definitions and lists.yaml (the pathways' forms need the app's lists)."""
    target = tmp_path / "forms"
    target.mkdir()
    for path in [*FORMS_DIR.glob("demo_*.yaml"), FORMS_DIR / "lists.yaml"]:
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture
def formkit_app(forms_dir: Path) -> Flask:
    return make_app(forms_dir)


@pytest.fixture
def get_ctx(formkit_app: Flask) -> Iterator[None]:
    """A GET request context: forms are built from saved ``data`` only."""
    with formkit_app.test_request_context("/"):
        yield


@pytest.fixture
def request_ctx(formkit_app: Flask) -> Iterator[None]:
    """A POST request context, so forms can be built, posted and rendered."""
    with formkit_app.test_request_context("/", method="POST"):
        yield


@pytest.fixture
def post(request_ctx: None) -> Callable[..., BoundForm]:
    """``post(key_or_definition, {"field": "value"}, shown=None)`` -> a posted BoundForm.

    Adds a valid CSRF token; ``shown`` (a list of names) becomes ``formkit_shown``.
    """

    def _post(form: str | FormDefinition, values: dict, shown: list[str] | None = None):
        definition = formkit.get_definition(form) if isinstance(form, str) else form
        formdata = {"csrf_token": generate_csrf(), **values}
        if shown is not None:
            formdata["formkit_shown"] = ",".join(shown)
        return build_form(definition, formdata=formdata)

    return _post
