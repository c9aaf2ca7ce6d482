"""Every form definition in forms/ is valid with the app's own choice lists, and every
form a published pathway names exists."""

from pathlib import Path

from app.formkit import load_form_definitions
from app.workflow import services as workflow

FORMS_DIR = Path(__file__).resolve().parent.parent / "forms"


def test_every_definition_in_forms_is_valid(app):
    with app.app_context():
        definitions = load_form_definitions(FORMS_DIR)
    assert {"consent", "person", "select_services", "demo_consent"} <= set(definitions)


def test_every_pathway_form_exists(app_ctx):
    from app.formkit import form_keys

    versions = workflow.publish_directory()
    assert versions
    for version in versions:
        assert set(version.form_keys) <= form_keys(), version.pathway.key
