"""The pathway studio without a browser: drafts, saves, checks, publication, versions, rollback."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.studio.models import PathwayDraft
from app.workflow import services as workflow
from app.workflow.models import PathwayVersion
from tests import factories

KEY = "gbv_referral"
MAIN = "gbv_referral.bpmn"


@pytest.fixture
def published(app):
    with app.app_context():
        workflow.publish_directory()
        db.session.commit()


@pytest.fixture
def coordinator(client, published, app):
    with app.app_context():
        user = factories.user("coordinator")
        db.session.commit()
        email = user.email
    client.login(email)
    return client


def _draft(app) -> PathwayDraft:
    with app.app_context():
        draft = db.session.scalar(select(PathwayDraft))
        db.session.expunge_all()
        return draft


def _save(client, xml: str, revision: int, name: str = MAIN):
    return client.post(f"/studio/{KEY}/draft/files/{name}", json={"xml": xml, "revision": revision},
                       headers={"X-CSRFToken": client.csrf_token()})


def _start(client) -> tuple[str, int]:
    response = client.post_form(f"/studio/{KEY}/draft")
    assert response.status_code == 302 and response.location.endswith(f"/studio/{KEY}/edit")
    xml = client.get(f"/studio/{KEY}/draft/files/{MAIN}").get_data(as_text=True)
    return xml, 1


def _events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_editor_page_offers_what_the_properties_panel_needs(coordinator):
    _start(coordinator)
    page = coordinator.get(f"/studio/{KEY}/edit").get_data(as_text=True)
    config = re.search(r'<script type="application/json" id="studio-config">(.*?)</script>', page, re.S)
    assert config, "the editor page embeds its configuration"
    import json

    data = json.loads(config.group(1))
    assert {"person", "gbv_intake", "consent"} <= {f["key"] for f in data["form_keys"]}
    assert {"caseworker", "provider", "coordinator"} == {r["value"] for r in data["roles"]}
    assert {"send_referral", "watch_targets"} <= {o["name"] for o in data["operations"]}
    assert {"cp_referral", "consent"} <= {t["id"] for t in data["call_targets"]}
    assert KEY not in {t["id"] for t in data["call_targets"]}
    assert {"response_deadline"} <= {d["id"] for d in data["decisions"]} or data["decisions"]
    assert data["problems"] == [] and data["revision"] == 1


def test_save_check_and_publish_a_changed_form_key(coordinator, app):
    xml, revision = _start(coordinator)
    broken = xml.replace('name="formKey" value="gbv_intake"', 'name="formKey" value="no_such_form"')
    response = _save(coordinator, broken, revision)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["saved"] and body["revision"] == 2
    [problem] = body["problems"]
    assert problem["element_id"] == "gbv_intake" and problem["element_name"] and "no_such_form" in problem["message"]

    refused = coordinator.post_form(f"/studio/{KEY}/publish")
    assert refused.status_code == 302 and refused.location.endswith(f"/studio/{KEY}/edit")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PathwayVersion)
                                 .where(PathwayVersion.source == "studio")) == 0

    fixed = xml.replace('name="formKey" value="gbv_intake"', 'name="formKey" value="cp_intake"')
    assert _save(coordinator, fixed, 2).get_json()["problems"] == []
    published = coordinator.post_form(f"/studio/{KEY}/publish")
    assert published.status_code == 302 and published.location.endswith(f"/studio/{KEY}/versions/2")
    page = coordinator.get(published.location).get_data(as_text=True)
    assert "Version 2" in page and "gbv_intake → cp_intake" in page.replace("&gt;", ">")
    with app.app_context():
        version = workflow.current_version(workflow.get_pathway(KEY))
        assert (version.number, version.source) == (2, "studio") and version.published_by_id
        assert "cp_intake" in version.form_keys and db.session.scalar(select(PathwayDraft)) is None
    assert [e.detail["version"] for e in _events(app, "studio.published")] == [2]
    assert len(_events(app, "studio.file_saved")) == 2 and _events(app, "studio.draft_started")


def test_a_stale_save_is_refused_and_loses_nothing(coordinator, app):
    xml, revision = _start(coordinator)
    first = xml.replace('name="About the person"', 'name="First edit"')
    assert _save(coordinator, first, revision).status_code == 200
    stale = _save(coordinator, xml.replace('name="About the person"', 'name="Second edit"'), revision)
    assert stale.status_code == 409 and stale.get_json()["revision"] == 2
    assert "First edit" in _draft(app).files[MAIN] and "Second edit" not in _draft(app).files[MAIN]


@pytest.mark.parametrize("payload,reason", [
    ("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>", "DOCTYPE"),
    ("<bpmn:definitions", "syntax"),
    ("x" * (1024 * 1024 + 1), "too large"),
])
def test_a_refused_file_is_not_saved(coordinator, app, payload, reason):
    xml, revision = _start(coordinator)
    response = _save(coordinator, payload, revision)
    assert response.status_code == 400
    body = response.get_json()
    assert body["problems"] and all(p["file"] == MAIN for p in body["problems"])
    draft = _draft(app)
    assert draft.revision == 1 and draft.files[MAIN] == xml


def test_malformed_save_requests_get_a_clear_error(coordinator):
    _start(coordinator)
    token = {"X-CSRFToken": coordinator.csrf_token()}
    assert coordinator.post(f"/studio/{KEY}/draft/files/{MAIN}", data="nope", headers=token).status_code == 400
    assert coordinator.post(f"/studio/{KEY}/draft/files/{MAIN}", json={"xml": 1}, headers=token).status_code == 400
    missing = coordinator.post(f"/studio/{KEY}/draft/files/nope.bpmn", json={"xml": "<a/>", "revision": 1},
                               headers=token)
    assert missing.status_code == 404
    assert coordinator.post(f"/studio/{KEY}/draft/files/{MAIN}", json={"xml": "<a/>", "revision": 1}).status_code == 400


def test_a_huge_request_body_is_refused_before_it_is_read(coordinator, app):
    _start(coordinator)
    huge = "<a>" + "x" * (3 * 1024 * 1024) + "</a>"
    response = _save(coordinator, huge, 1)
    assert response.status_code == 413
    assert _draft(app).revision == 1


def test_check_endpoint_reports_without_saving(coordinator, app):
    xml, _ = _start(coordinator)
    broken = xml.replace("consent_given == True", "consent_given ==", 1)
    assert broken != xml
    body = coordinator.post(f"/studio/{KEY}/draft/check?file={MAIN}", json={"xml": broken},
                            headers={"X-CSRFToken": coordinator.csrf_token()}).get_json()
    assert body["problems"] and body["problems"][0]["element_id"]
    assert _draft(app).files[MAIN] == xml


def test_upload_replaces_a_file_and_refuses_hostile_ones(coordinator, app):
    import io

    xml, _ = _start(coordinator)
    changed = xml.replace('name="About the person"', 'name="Uploaded name"').encode()
    response = coordinator.post_form(f"/studio/{KEY}/draft/upload",
                                     {"file": (io.BytesIO(changed), MAIN)}, content_type="multipart/form-data")
    assert response.status_code == 302
    assert "Uploaded name" in _draft(app).files[MAIN]
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>')
    response = coordinator.post_form(f"/studio/{KEY}/draft/upload", {"file": (io.BytesIO(laughs), MAIN)},
                                     content_type="multipart/form-data", follow_redirects=True)
    assert "Upload refused" in response.get_data(as_text=True)
    assert "Uploaded name" in _draft(app).files[MAIN] and _draft(app).revision == 2
    response = coordinator.post_form(f"/studio/{KEY}/draft/upload", {"file": (io.BytesIO(b"hi"), "notes.txt")},
                                     content_type="multipart/form-data", follow_redirects=True)
    assert "upload a .bpmn or .dmn file" in response.get_data(as_text=True)
    assert "notes.txt" not in _draft(app).files


def test_running_referrals_keep_their_version_and_new_ones_take_the_newest(coordinator, app):
    from flask import current_app

    from app.referrals import services as referrals

    with app.app_context():
        caseworker = factories.user("caseworker")
        db.session.commit()
        with current_app.test_request_context():
            old = referrals.start_referral(caseworker, KEY)
            db.session.commit()
            old_id = old.id
    xml, revision = _start(coordinator)
    _save(coordinator, xml.replace('name="Informed consent"', 'name="Consent, new wording"'), revision)
    assert coordinator.post_form(f"/studio/{KEY}/publish").status_code == 302
    with app.app_context():
        with current_app.test_request_context():
            from app.referrals.models import Referral

            new = referrals.start_referral(db.session.merge(caseworker), KEY)
            db.session.commit()
            old = db.session.get(Referral, old_id)
            assert (old.version.number, new.version.number) == (1, 2)


def test_rollback_publishes_an_old_version_again(coordinator, app):
    xml, revision = _start(coordinator)
    _save(coordinator, xml.replace('name="formKey" value="gbv_intake"', 'name="formKey" value="cp_intake"'), revision)
    coordinator.post_form(f"/studio/{KEY}/publish")
    response = coordinator.post_form(f"/studio/{KEY}/versions/1/rollback")
    assert response.status_code == 302 and response.location.endswith(f"/studio/{KEY}/versions/3")
    page = coordinator.get(response.location).get_data(as_text=True)
    assert "Publishes version 1 again" in page and "cp_intake → gbv_intake" in page.replace("&gt;", ">")
    with app.app_context():
        pathway = workflow.get_pathway(KEY)
        v1, v3 = pathway.versions[0], workflow.current_version(pathway)
        assert (v3.number, v3.source, v3.restores_number) == (3, "rollback", 1)
        assert v3.content_hash == v1.content_hash and v3.files == v1.files
    assert [e.detail["restores"] for e in _events(app, "studio.rolled_back")] == [1]
    # The workflows/ files did not change: loading them again keeps the rolled-back version.
    with app.app_context():
        workflow.publish_directory()
        db.session.commit()
        assert workflow.current_version(workflow.get_pathway(KEY)).number == 3


def test_publishing_the_files_again_does_not_undo_a_studio_version(coordinator, app):
    xml, revision = _start(coordinator)
    _save(coordinator, xml.replace('name="Informed consent"', 'name="Studio wording"'), revision)
    coordinator.post_form(f"/studio/{KEY}/publish")
    with app.app_context():
        workflow.publish_directory()
        db.session.commit()
        version = workflow.current_version(workflow.get_pathway(KEY))
        assert (version.number, version.source) == (2, "studio")


def test_new_pathway_blank_and_copied(coordinator, app):
    response = coordinator.post_form("/studio/new", {"title": "Blank one", "key": "blank_one", "copy_from": ""})
    assert response.status_code == 302
    assert coordinator.post_form("/studio/blank_one/publish").status_code == 302
    response = coordinator.post_form("/studio/new", {"title": "GBV east", "key": "gbv_east", "copy_from": KEY})
    assert response.status_code == 302 and response.location.endswith("/studio/gbv_east/edit")
    page = coordinator.get("/studio/gbv_east/edit").get_data(as_text=True)
    assert "No problems found." in page
    assert coordinator.post_form("/studio/gbv_east/publish").location.endswith("/studio/gbv_east/versions/1")
    with app.app_context():
        copy = workflow.current_version(workflow.get_pathway("gbv_east"))
        assert copy.main_file == "gbv_east.bpmn" and 'id="gbv_east"' in copy.files["gbv_east.bpmn"]
        assert {p.key for p in workflow.published_pathways()} >= {"gbv_east", "blank_one", KEY}
    taken = coordinator.post_form("/studio/new", {"title": "Again", "key": "gbv_east", "copy_from": ""})
    assert taken.status_code == 422 and "already exists" in taken.get_data(as_text=True)
    bad = coordinator.post_form("/studio/new", {"title": "Bad", "key": "Bad Key!", "copy_from": ""})
    assert bad.status_code == 422


def test_a_new_pathway_may_call_a_shared_process_of_another_pathway(coordinator, app):
    coordinator.post_form("/studio/new", {"title": "With consent", "key": "with_consent", "copy_from": ""})
    xml = coordinator.get("/studio/with_consent/draft/files/with_consent.bpmn").get_data(as_text=True)
    called = (xml.replace('targetRef="with_consent_end"', 'targetRef="ask"')
              .replace('<bpmn:endEvent id="with_consent_end" name="End">',
                       '<bpmn:callActivity id="ask" name="Ask consent" calledElement="consent">'
                       '<bpmn:incoming>with_consent_flow</bpmn:incoming><bpmn:outgoing>after</bpmn:outgoing>'
                       '</bpmn:callActivity><bpmn:sequenceFlow id="after" sourceRef="ask" '
                       'targetRef="with_consent_end" /><bpmn:endEvent id="with_consent_end" name="End">')
              .replace('<bpmn:incoming>with_consent_flow</bpmn:incoming></bpmn:endEvent>',
                       '<bpmn:incoming>after</bpmn:incoming></bpmn:endEvent>')
              .replace("<bpmn:flowNodeRef>with_consent_end</bpmn:flowNodeRef>",
                       "<bpmn:flowNodeRef>with_consent_end</bpmn:flowNodeRef><bpmn:flowNodeRef>ask</bpmn:flowNodeRef>"))
    body = coordinator.post("/studio/with_consent/draft/files/with_consent.bpmn", json={"xml": called, "revision": 1},
                            headers={"X-CSRFToken": coordinator.csrf_token()}).get_json()
    assert body["problems"] == [], body["problems"]
    assert coordinator.post_form("/studio/with_consent/publish").location.endswith("/with_consent/versions/1")
    with app.app_context():
        version = workflow.current_version(workflow.get_pathway("with_consent"))
        assert any('id="consent"' in text for name, text in version.files.items() if name != version.main_file)
        assert "consent" in version.form_keys


def test_discarding_a_new_pathways_draft_removes_it(coordinator, app):
    coordinator.post_form("/studio/new", {"title": "Scratch", "key": "scratch", "copy_from": ""})
    assert coordinator.post_form("/studio/scratch/draft/discard").status_code == 302
    with app.app_context():
        assert workflow.get_pathway("scratch") is None
    assert _events(app, "studio.draft_discarded")


def test_downloads(coordinator):
    _start(coordinator)
    draft_file = coordinator.get(f"/studio/{KEY}/draft/files/{MAIN}?download=1")
    assert draft_file.status_code == 200 and draft_file.mimetype == "application/xml"
    assert "attachment" in draft_file.headers["Content-Disposition"]
    version_file = coordinator.get(f"/studio/{KEY}/versions/1/files/shared/consent.bpmn")
    assert version_file.status_code == 200 and b'id="consent"' in version_file.data
    assert coordinator.get(f"/studio/{KEY}/versions/1/files/nope.bpmn").status_code == 404
    assert coordinator.get(f"/studio/{KEY}/versions/9").status_code == 404


@pytest.mark.parametrize("role", ["caseworker", "provider"])
def test_only_coordinators_and_admins_reach_the_studio(client, app, published, role):
    with app.app_context():
        user = factories.user(role)
        db.session.commit()
        email = user.email
    client.login(email)
    for url in ["/studio/", "/studio/new", f"/studio/{KEY}/", f"/studio/{KEY}/edit", f"/studio/{KEY}/test-run",
                f"/studio/{KEY}/versions/1", f"/studio/{KEY}/versions/1/files/{MAIN}"]:
        assert client.get(url).status_code == 403, url
    for url in [f"/studio/{KEY}/draft", f"/studio/{KEY}/publish", f"/studio/{KEY}/versions/1/rollback",
                f"/studio/{KEY}/draft/files/{MAIN}", f"/studio/{KEY}/test-run"]:
        assert client.post_form(url).status_code == 403, url
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PathwayDraft)) == 0


def test_admins_reach_the_studio_and_anonymous_users_are_sent_to_log_in(client, app, published):
    assert client.get("/studio/").status_code == 302
    with app.app_context():
        admin = factories.user("admin")
        db.session.commit()
        email = admin.email
    client.login(email)
    assert client.get("/studio/").status_code == 200
