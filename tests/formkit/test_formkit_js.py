"""formkit.js shows the same questions as the server, for the same answers (needs node)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from flask import render_template_string

from app.formkit import build_form, get_definition, load_form_definitions
from tests.formkit.conftest import REPO
from tests.formkit.test_rendering import Page
from tests.formkit.test_validation import CHAIN

NODE = shutil.which("node")
SCRIPT = REPO / "app" / "formkit" / "static" / "formkit.js"

#: A DOM just big enough for formkit.js, built from the page the server rendered.
HARNESS = """
const page = JSON.parse(process.argv[1]);
const shown = {name: "formkit_shown", value: page.shown};
const form = {
  listeners: [],
  addEventListener(type, fn) { this.listeners.push(fn); },
  querySelector(sel) { return page.wrappers.some(w => w.rule) ? {} : null; },
  querySelectorAll(sel) {
    if (sel === "[data-field]") { return page.wrappers.map(w => ({
      hidden: w.hidden, name: w.name,
      getAttribute(a) { return a === "data-field" ? w.name : w.rule; } })); }
    const name = sel.match(/name="([^"]+)"/)[1];
    return page.controls.filter(c => c.name === name).map(c => Object.assign({
      selectedOptions: c.selected.map(v => ({value: v})), value: "", checked: false}, c));
  },
};
shown.form = form;
global.document = {readyState: "complete",
  querySelectorAll() { return [shown]; }, addEventListener() {}};
require(process.argv[2]);
process.stdout.write(shown.value);
"""


def page_model(html: str) -> dict:
    page = Page(html)
    wrappers = [
        {"name": t.attrs["data-field"], "rule": t.attrs.get("data-show-if"), "hidden": True}
        for t in page.find("div")
        if "data-field" in t.attrs
    ]
    controls = []
    for tag in page.tags:
        if tag.name == "input" and tag.attrs.get("type") != "hidden":
            controls.append(
                {
                    "name": tag.attrs["name"],
                    "type": tag.attrs.get("type", "text"),
                    "value": tag.attrs.get("value", ""),
                    "checked": "checked" in tag.attrs,
                    "tagName": "INPUT",
                    "selected": [],
                }
            )
        elif tag.name == "select":
            chosen = [
                t.attrs["value"]
                for t in page.find("option")
                if "selected" in t.attrs and t.wrapper == tag.wrapper
            ]
            controls.append(
                {"name": tag.attrs["name"], "tagName": "SELECT", "type": "select-one", "selected": chosen}
            )
    return {"wrappers": wrappers, "controls": controls, "shown": ""}


def run_script(html: str) -> str:
    model = json.dumps(page_model(html))
    result = subprocess.run(
        [NODE, "-e", HARNESS, model, str(SCRIPT)], capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout


ANSWERS = [
    ("demo_consent", {}),
    ("demo_consent", {"consent_given": "yes"}),
    ("demo_consent", {"consent_given": "no", "consent_by": "person"}),
    ("demo_child", {"caregiver_informed": "yes"}),
    ("chain", {"a": "yes", "b": "yes"}),
    ("chain", {"a": "no", "b": "yes"}),
    ("chain", {"n": "0"}),
    ("chain", {"n": "0,0"}),
    ("chain", {"n": "2,5"}),
    ("chain", {"n": "1e3"}),
    ("chain", {"m": ["x"]}),
    ("chain", {"m": ["x", "y"]}),
]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize(("key", "answers"), ANSWERS)
def test_script_and_server_agree_on_visible_fields(get_ctx, tmp_path, key, answers):
    (tmp_path / "chain.yaml").write_text(CHAIN)
    definition = load_form_definitions(tmp_path)["chain"] if key == "chain" else get_definition(key)
    bound = build_form(definition, data=answers)
    html = render_template_string(
        '{% from "formkit/_macros.html" import render_fields %}{{ render_fields(b) }}', b=bound
    )
    assert run_script(html) == bound.shown_value()
