"""The pathway editor in a real browser (Playwright driving Debian's Chromium).

A coordinator opens the editor, changes a user task's form and a timer, saves, sees the
error of a broken gateway condition on that flow, fixes it, test-runs and publishes the draft;
a new referral then follows the new version while an older one stays on the old. Also: every
BPMN and DMN file of workflows/ survives an import and export by the vendored bpmn-js and
dmn-js with each spiffworkflow extension element kept (a file without a diagram gets one), the
DMN editor opens and saves a table, and — without a browser — the editor page loads only the
app's own files, which are the pinned bpmn-js and dmn-js.

Needs Python Playwright (requirements.txt) and /usr/bin/chromium (``make browser``). Without
them the tests are skipped with the reason, unless REQUIRE_BROWSER is set (as in .ci/run):
then they fail.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree
from werkzeug.serving import WSGIRequestHandler, make_server

from app.extensions import db
from app.referrals.models import Referral
from app.workflow import services as workflow
from tests import factories
from tests.referrals.helpers import submit

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
#: Chromium flags for a closed network: without them it stalls on its own background requests.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
KEY = "gbv_referral"
CONSENT = {"consent_given": "yes", "given_by": "person", "shared_information": ["needs_summary"],
           "organisation_scope": "any_selected", "purpose": ["service_provision"]}


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed (pip install -r requirements.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (install it with `make browser`, as root)"
    return None


#: What the dmn-js bundle itself logs as an error on every load (its Inferno is built that way).
_VENDOR_NOISE = ("It looks like you're using a minified copy of the development build of Inferno",)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # the browser's requests are not news
        pass


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"REQUIRE_BROWSER is set but the browser tests cannot run: {reason}")
        pytest.skip(f"browser tests SKIPPED: {reason}")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def live_server(app, browser):
    """The test app (same database as the test) served on a free port of 127.0.0.1."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def page(browser, live_server):
    """A fresh browser tab; requests leaving the live server are blocked and recorded, as are
    the page's JavaScript errors, and the test fails on either."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    outside, errors = [], []

    def only_local(route):
        if route.request.url.startswith(live_server + "/") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error"
           and "favicon" not in (message.location or {}).get("url", "")
           and not message.text.startswith(_VENDOR_NOISE) else None)
    try:
        yield tab
    finally:
        context.close()
    assert outside == [], f"the page asked for addresses outside the app: {outside}"
    assert errors == [], f"JavaScript errors: {errors}"


# ----------------------------------------------------------------------------- helpers

def _login(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("main input[name=email]", email)
    page.fill("main input[name=password]", factories.PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def _editor_ready(page) -> None:
    page.wait_for_selector("#studio-editor[data-ready=true]", state="attached")
    assert page.locator(".bjs-powered-by, .dmn-js-powered-by, a[href='https://bpmn.io']").first.is_visible(), \
        "the bpmn.io watermark must stay visible"


_SHOW = """id => {
  const modeler = window.pathwaysModeler, canvas = modeler.get('canvas');
  canvas.zoom(1);
  canvas.scrollToElement(modeler.get('elementRegistry').get(id));
}"""

_POINT_ON_FLOW = """id => {
  const modeler = window.pathwaysModeler, canvas = modeler.get('canvas');
  const points = modeler.get('elementRegistry').get(id).waypoints;
  let best = null;
  for (let i = 1; i < points.length; i++) {
    const length = Math.hypot(points[i].x - points[i - 1].x, points[i].y - points[i - 1].y);
    if (!best || length > best.length) {
      best = {length, x: (points[i].x + points[i - 1].x) / 2, y: (points[i].y + points[i - 1].y) / 2};
    }
  }
  const box = canvas.viewbox(), rect = canvas.getContainer().getBoundingClientRect();
  return {x: rect.left + (best.x - box.x) * box.scale, y: rect.top + (best.y - box.y) * box.scale};
}"""


def _click_shape(page, element_id: str) -> None:
    """Zoom to 100 % around the element (as a person would, to read it) and click it."""
    page.locator("#studio-canvas").scroll_into_view_if_needed()
    page.evaluate(_SHOW, element_id)
    page.click(f'#studio-canvas g.djs-shape[data-element-id="{element_id}"]')
    _selected(page, element_id)


def _click_flow(page, flow_id: str) -> None:
    """Click the middle of the longest segment of a sequence flow (its bounding box's centre may
    be off the line)."""
    page.locator("#studio-canvas").scroll_into_view_if_needed()
    page.evaluate(_SHOW, flow_id)
    point = page.evaluate(_POINT_ON_FLOW, flow_id)
    page.mouse.click(point["x"], point["y"])
    _selected(page, flow_id)


def _selected(page, element_id: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#pp-id")).to_have_value(element_id)
    assert page.evaluate("window.pathwaysModeler.get('selection').get().map(e => e.id)") == [element_id]


def _labelled(page, control_id: str) -> None:
    assert page.locator(f'label[for="{control_id}"]').inner_text().strip(), f"#{control_id} has no label"


def _save(page) -> str:
    from playwright.sync_api import expect

    page.click("#studio-save")
    expect(page.locator("#studio-status")).to_contain_text(re.compile(r"Saved \(revision \d+\)"))
    expect(page.locator("#studio-dirty")).to_be_hidden()
    return page.inner_text("#studio-status")


def _open_file(page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    page.wait_for_url(re.compile(r"/edit\?file="))
    _editor_ready(page)


def _start_referral(client) -> int:
    response = client.post_form("/referrals/new", {"pathway": KEY})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(re.search(r"/referrals/(\d+)/step", response.headers["Location"]).group(1))


def _referral_state(app, referral_id: int) -> tuple[int, list[tuple[str, str | None]]]:
    """(version number, [(step id, form key)] of the steps ready now)."""
    with app.app_context():
        referral = db.session.get(Referral, referral_id)
        ready = [(t.spec_name, t.form_key) for t in workflow.ready_tasks(referral.instance)]
        return referral.version.number, ready


# ------------------------------------------------------------------------------- tests

def test_edit_check_test_run_publish_and_versions(app, client, login_as, live_server, page, tmp_path):
    from playwright.sync_api import expect

    with app.app_context():
        workflow.publish_directory()
        coordinator = factories.user("coordinator")
        db.session.commit()
        coordinator_email = coordinator.email

    # 1. A referral started on the current version: the older one.
    login_as("caseworker")
    older = _start_referral(client)
    first_version, ready = _referral_state(app, older)
    assert ready == [("ask_consent", "consent")]

    # 2. The coordinator opens the editor on a new draft of the pathway.
    _login(page, live_server, coordinator_email)
    page.goto(f"{live_server}/studio/{KEY}/")
    page.click("#start-draft")
    page.wait_for_url(re.compile(rf"/studio/{KEY}/edit"))
    _editor_ready(page)
    expect(page.locator("#studio-problem-count")).to_have_text("0")

    # A user task: its form, chosen among the forms; its role shown from its lane.
    _click_shape(page, "person")
    for control in ("pp-id", "pp-name", "pp-form-key", "pp-role", "pp-allow-back", "pp-instructions"):
        _labelled(page, control)
    expect(page.locator("#pp-form-key")).to_have_value("person")
    expect(page.locator("#pp-role")).to_have_value("caseworker")
    page.select_option("#pp-form-key", "demo_person")
    expect(page.locator("#studio-dirty")).to_be_visible()
    # The panel works from the keyboard, and keeps the focus where it was after a change.
    page.focus("#pp-allow-back")
    page.keyboard.press("Space")
    expect(page.locator("#pp-allow-back")).not_to_be_checked()
    assert page.evaluate("document.activeElement.id") == "pp-allow-back"
    page.keyboard.press("Space")
    expect(page.locator("#pp-allow-back")).to_be_checked()
    _save(page)

    # A timer (the boundary timers are in the shared sending process): its duration.
    _open_file(page, "shared/send_to_services.bpmn")
    _click_shape(page, "reminder_due")
    _labelled(page, "pp-timer-expression")
    expect(page.locator("#pp-timer-type")).to_have_value("timeDuration")
    expect(page.locator("#pp-timer-expression")).to_have_value("watch['reminder_in']")
    page.fill("#pp-timer-expression", '"PT36H"')
    page.keyboard.press("Tab")
    _save(page)
    saved = page.evaluate("fetch(JSON.parse(document.getElementById('studio-config').textContent).xml_url)"
                          ".then(r => r.text())")
    assert '"PT36H"' in saved and "watch['reminder_in']" not in saved

    # 3. A broken condition: saved (a draft may be invalid), named in the problem list, marked.
    _open_file(page, f"{KEY}.bpmn")
    _click_flow(page, "f_cp_offer")
    _labelled(page, "pp-condition")
    expect(page.locator("#pp-condition")).to_have_value("age < 18")
    page.fill("#pp-condition", "__import__('os')")
    page.keyboard.press("Tab")
    status = _save(page)
    assert "Problems to fix" in status
    expect(page.locator("#studio-problem-list li").first).to_be_visible()
    named = page.locator("#studio-problem-list li").evaluate_all("items => items.map(li => li.dataset.elementId)")
    assert named == ["f_cp_offer"], f"the one problem must name the flow f_cp_offer, not {named}"
    problem = page.locator('#studio-problem-list li[data-element-id="f_cp_offer"]')
    expect(problem).to_contain_text("f_cp_offer")
    expect(problem).to_contain_text("__import__")
    expect(page.locator('#studio-canvas g.djs-element[data-element-id="f_cp_offer"]')).to_have_class(
        re.compile(r"\bpw-error\b"))
    # Clicking the problem selects its element.
    _click_shape(page, "person")
    problem.get_by_role("button").click()
    _selected(page, "f_cp_offer")

    # 4. Fixed: saved with no problem, and Check agrees.
    page.fill("#pp-condition", "age < 18")
    page.keyboard.press("Tab")
    assert "No problems" in _save(page)
    expect(page.locator("#studio-problem-list li")).to_have_count(0)
    expect(page.locator("#studio-canvas g.pw-error")).to_have_count(0)
    page.click("#studio-check")
    expect(page.locator("#studio-status")).to_contain_text("no problems found")
    page.screenshot(path=str(tmp_path / "editor.png"))

    # 5. Test run: the route taken up to the step with the changed form.
    page.click("#studio-test-run")
    page.wait_for_url(re.compile(rf"/studio/{KEY}/test-run"))
    page.fill("#answers", json.dumps({"consent": CONSENT}))
    page.click("button[name=action][value=run]")
    route = page.locator("#test-run-route li")
    expect(route.first).to_be_visible()
    steps = route.evaluate_all("items => items.map(li => li.dataset.elementId)")
    assert {"set_sector", "get_consent", "ask_consent"} <= set(steps), steps
    expect(page.locator("#test-run-status")).to_contain_text("(person), form demo_person")

    # 6. Publish: the version page shows the new number.
    page.goto(f"{live_server}/studio/{KEY}/edit")
    _editor_ready(page)
    page.click("#studio-publish")
    page.wait_for_url(re.compile(rf"/studio/{KEY}/versions/\d+"))
    new_version = first_version + 1
    expect(page.locator("#version-title")).to_contain_text(f"Version {new_version}")

    # 7. A new referral follows the new version, with the new form; the older one keeps its own.
    newer = _start_referral(client)
    for referral_id in (older, newer):
        response = submit(client, referral_id, CONSENT)
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert _referral_state(app, newer) == (new_version, [("person", "demo_person")])
    assert _referral_state(app, older) == (first_version, [("person", "person")])
    with app.app_context():
        version = workflow.current_version(workflow.get_pathway(KEY))
        assert version.number == new_version
        assert '"PT36H"' in version.files["shared/send_to_services.bpmn"]


def _signatures(root) -> Counter:
    """Every spiffworkflow element: its tag, attributes, text and the id of its nearest owner."""
    found = Counter()
    for element in root.iter(f"{{{SPIFF_NS}}}*"):
        owner = next((a.get("id") for a in element.iterancestors() if a.get("id")), None)
        text = (element.text or "").strip()
        found[(owner, etree.QName(element).localname, tuple(sorted(element.attrib.items())), text)] += 1
    return found


def _ids_and_texts(root) -> tuple[set, Counter]:
    ids = {(etree.QName(e).localname, e.get("id")) for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
    texts = Counter()
    for element in root.iter():
        if not isinstance(element.tag, str) or not (element.text or "").strip() or len(element):
            continue
        owner = next((a.get("id") for a in element.iterancestors() if a.get("id")), None)
        texts[(owner, etree.QName(element).localname, element.text.strip())] += 1
    return ids, texts


_ROUND_TRIP = """async ({xml, kind, descriptor}) => {
  const container = document.createElement('div');
  container.style.cssText = 'width:900px;height:600px';
  document.body.appendChild(container);
  let modeler, warnings, laidOut = 0;
  if (kind === 'bpmn') {  // as the editor loads a file: parse, lay out a missing diagram, import
    modeler = new BpmnJS({container, moddleExtensions: {spiffworkflow: descriptor}});
    const moddle = modeler.get('moddle');
    const parsed = await moddle.fromXML(xml, 'bpmn:Definitions');
    laidOut = PathwaysLayout.ensureDiagram(moddle, parsed.rootElement);
    const imported = await modeler.importDefinitions(parsed.rootElement);
    warnings = parsed.warnings.concat(imported.warnings);
  } else {
    modeler = new DmnJS({container});
    warnings = (await modeler.importXML(xml)).warnings;
  }
  const shapes = kind === 'bpmn' ? modeler.get('elementRegistry').filter(e => !e.waypoints).length : 0;
  const exported = await modeler.saveXML({format: true});
  modeler.destroy();
  container.remove();
  return {xml: exported.xml, warnings: warnings.map(w => w.message), laidOut, shapes};
}"""


def test_every_workflow_file_round_trips_through_the_modelers(live_server, page):
    page.goto(live_server + "/login")  # any page of the app: the bundles load from its origin
    for bundle in ("vendor/bpmn-js/bpmn-modeler.production.min.js", "vendor/dmn-js/dmn-modeler.production.min.js",
                   "layout.js"):
        page.add_script_tag(url=f"{live_server}/studio/static/{bundle}")
    descriptor = json.loads((REPO / "app/studio/static/spiffworkflow-moddle.json").read_text())
    files = sorted((REPO / "workflows").rglob("*.bpmn")) + sorted((REPO / "workflows").rglob("*.dmn"))
    assert len(files) >= 10
    for path in files:
        original = path.read_text()
        kind = path.suffix[1:]
        result = page.evaluate(_ROUND_TRIP, {"xml": original, "kind": kind, "descriptor": descriptor})
        name = path.relative_to(REPO)
        assert result["warnings"] == [], f"{name}: {result['warnings']}"
        before = etree.fromstring(original.encode())
        after = etree.fromstring(result["xml"].encode())
        assert _signatures(after) == _signatures(before), f"{name}: spiffworkflow elements changed"
        ids_before, texts_before = _ids_and_texts(before)
        ids_after, texts_after = _ids_and_texts(after)
        assert ids_before <= ids_after, f"{name}: lost {ids_before - ids_after}"
        missing = texts_before - texts_after
        assert not missing, f"{name}: lost texts {missing}"
        if kind == "bpmn":
            assert _signatures(before), f"{name}: no spiffworkflow element to check"
            has_diagram = before.find("{*}BPMNDiagram") is not None
            assert result["laidOut"] == (0 if has_diagram else 1), name
            assert result["shapes"] > 5, f"{name}: nothing drawn"


def test_the_decision_table_editor_opens_and_saves(app, live_server, page):
    from playwright.sync_api import expect

    with app.app_context():
        workflow.publish_directory()
        coordinator = factories.user("coordinator")
        db.session.commit()
        email = coordinator.email
    _login(page, live_server, email)
    page.goto(f"{live_server}/studio/{KEY}/")
    page.click("#start-draft")
    page.wait_for_url(re.compile(rf"/studio/{KEY}/edit"))
    _editor_ready(page)
    _open_file(page, "shared/urgency_level.dmn")
    rule_ids = [r.get("id") for r in etree.parse(str(REPO / "workflows/shared/urgency_level.dmn")).iter("{*}rule")]
    table = page.locator("#studio-canvas .tjs-table")
    expect(table).to_be_visible()
    expect(table.locator("td.rule-index[data-row-id]")).to_have_count(len(rule_ids))
    expect(table).to_contain_text("Caseworker's assessment")

    # Edit an annotation cell (dmn-js cells are content-editable), save, read the file back.
    cell = table.locator('td.annotation[data-row-id="r_normal"] [contenteditable]')
    cell.click()
    page.keyboard.press("End")
    page.keyboard.type(" (checked)")
    page.locator("#studio-problems-title").click()
    expect(page.locator("#studio-dirty")).to_be_visible()
    _save(page)
    saved = page.evaluate("fetch(JSON.parse(document.getElementById('studio-config').textContent).xml_url)"
                          ".then(r => r.text())")
    rules = etree.fromstring(saved.encode()).findall(".//{*}rule")
    assert [r.get("id") for r in rules] == rule_ids
    assert rules[rule_ids.index("r_normal")].findtext("{*}description") == "Assessed as normal (checked)"
    page.click("#studio-check")
    expect(page.locator("#studio-status")).to_contain_text("Checked")


# ------------------------------------------------------- without a browser: the page and the files

def test_the_editor_page_uses_only_the_apps_own_files(app, client):
    """No CDN: every script and stylesheet of the editor comes from the app, and they exist."""
    with app.app_context():
        workflow.publish_directory()
        coordinator = factories.user("coordinator")
        db.session.commit()
        email = coordinator.email
    client.login(email)
    client.post_form(f"/studio/{KEY}/draft")
    for name, vendor in ((f"{KEY}.bpmn", "bpmn-js"), ("shared/urgency_level.dmn", "dmn-js")):
        page = client.get(f"/studio/{KEY}/edit", query_string={"file": name}).get_data(as_text=True)
        assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page)
        assert any(f"/vendor/{vendor}/" in a for a in assets), assets
        for url in assets:
            assert url.startswith("/") and not url.startswith("//"), f"{name}: {url} is not the app's own"
            response = client.get(url)
            assert response.status_code == 200, url
            response.close()
        assert 'id="studio-config"' in page


def test_the_vendored_modelers_are_the_pinned_ones():
    """app/studio/static/vendor/ holds what `make studio-assets` copies for the pinned versions."""
    assets = REPO / "app/studio/assets"
    pinned = json.loads((assets / "package.json").read_text())["dependencies"]
    locked = json.loads((assets / "package-lock.json").read_text())["packages"]
    vendor = REPO / "app/studio/static/vendor"
    versions = dict(line.split() for line in (vendor / "VERSIONS").read_text().splitlines())
    for package, bundle in (("bpmn-js", "bpmn-modeler"), ("dmn-js", "dmn-modeler")):
        assert locked[f"node_modules/{package}"]["version"] == pinned[package] == versions[package]
        head = (vendor / package / f"{bundle}.production.min.js").read_text()[:200]
        assert f"{package} - {bundle} v{pinned[package]}" in head
        assert "watermark" in (vendor / package / "LICENSE").read_text()
        assert (vendor / package / "assets").is_dir()
    assert pinned["bpmn-js"].startswith("18.") and pinned["dmn-js"].startswith("17.")
