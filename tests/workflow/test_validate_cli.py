"""``flask --app wsgi pathways validate FILE [FILE ...]``: the checks of publishing, from the
command line, with the app's forms, operations and roles and what WORKFLOWS_DIR offers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.workflow.checks import display_path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
INVALID = Path(__file__).parent / "bpmn" / "checks" / "invalid"


@pytest.fixture
def validate(app):
    def run(*paths):
        result = app.test_cli_runner().invoke(args=["pathways", "validate", *map(str, paths)])
        return result.exit_code, result.output.splitlines()

    return run


@pytest.mark.parametrize(("path", "line"), [
    (WORKFLOWS / "cp_referral.bpmn", "OK: cp_referral (7 user tasks, 5 sub-processes, 8 files)"),
    (WORKFLOWS / "demo_referral.bpmn", "OK: demo_referral (5 user tasks, 0 sub-processes, 4 files)"),
    (WORKFLOWS / "shared" / "safety_assessment.bpmn", "OK: safety_assessment (1 user task, 0 sub-processes, 4 files)"),
    (WORKFLOWS / "shared" / "urgency_level.dmn", "OK: urgency_level (1 decision table)"),
])
def test_good_files_pass(validate, path, line):
    assert validate(path) == (0, [line])


def test_problems_are_listed_one_per_line_with_the_element(validate):
    code, lines = validate(INVALID / "wrong_lanes.bpmn")
    name = display_path(INVALID / "wrong_lanes.bpmn")
    assert code == 1
    assert f"{name}:tell_story (Tell the story): user task is in the lane 'Survivor', which is not a role: " \
           "lanes must be named caseworker, coordinator or provider" in lines
    assert f"{name}:check_story (Check the story): user task is not in a lane: put it in the lane of the role " \
           "that does it (caseworker, coordinator or provider)" in lines
    assert f"{name}:tell_story (Tell the story): form 'intake' has no definition in forms/" in lines  # the app's forms
    assert not any(line.startswith("OK") for line in lines)


@pytest.mark.parametrize(("fixture", "element", "start"), [
    ("no_default_flow.bpmn", "age_check (How old?)", "exclusive gateway has 2 outgoing flows and none is the default"),
    ("calls_missing.bpmn", "assess (Assess the needs)", "called process 'needs_assessment' was not found"),
    ("no_catch_all.dmn", "band_table (Child or adult)", "decision table has no catch-all rule"),
])
def test_each_invalid_fixture_fails(validate, fixture, element, start):
    code, lines = validate(INVALID / fixture)
    assert code == 1
    assert any(line.startswith(f"{display_path(INVALID / fixture)}:{element}: {start}") for line in lines), lines


def test_called_processes_resolve_from_workflows_dir_even_another_main_pathway(validate, tmp_path):
    # A new pathway outside workflows/ calling a shared process and the demo pathway.
    caller = (INVALID / "calls_missing.bpmn").read_text().replace('calledElement="needs_assessment"',
                                                                  'calledElement="consent"')
    caller = caller.replace('<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>',
                            '<bpmn:callActivity id="demo" name="Demo" calledElement="demo_referral" />'
                            '<bpmn:endEvent id="end" />')
    caller = caller.replace('<bpmn:sequenceFlow id="f2" sourceRef="assess" targetRef="end" />',
                            '<bpmn:sequenceFlow id="f2" sourceRef="assess" targetRef="demo" />'
                            '<bpmn:sequenceFlow id="f3" sourceRef="demo" targetRef="end" />')
    (tmp_path / "caller.bpmn").write_text(caller)
    code, lines = validate(tmp_path / "caller.bpmn")
    assert (code, lines) == (0, ["OK: calls_missing (6 user tasks, 2 sub-processes, 6 files)"])


def test_given_files_take_the_place_of_the_shared_ones(validate, tmp_path):
    # An edited copy of a shared table and of a shared process: the copies are checked, not the originals.
    table = (WORKFLOWS / "shared" / "urgency_level.dmn").read_text()
    start = table.index('      <rule id="r_otherwise">')
    (tmp_path / "urgency_level.dmn").write_text(table[:start] + table[table.index("</rule>", start) + 8:])
    consent = (WORKFLOWS / "shared" / "consent.bpmn").read_text().replace('name="caseworker"', 'name="Caseworker"')
    (tmp_path / "consent.bpmn").write_text(consent)
    code, lines = validate(WORKFLOWS / "cp_referral.bpmn", tmp_path / "urgency_level.dmn", tmp_path / "consent.bpmn")
    assert code == 1
    assert sorted(line.split(": ", 1)[0] for line in lines) == [
        f"{display_path(tmp_path / 'consent.bpmn')}:ask_consent (Informed consent)",
        f"{display_path(tmp_path / 'urgency_level.dmn')}:urgency_level_table (Urgency of a protection referral)"]
    assert any("which is not a role (lane names are lower case: 'caseworker')" in line for line in lines)


def test_hostile_files_are_refused(validate, tmp_path):
    evil = (WORKFLOWS / "demo_referral.bpmn").read_text().replace(
        "<bpmn:definitions", '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
        "<bpmn:definitions", 1).replace('name="Demo protection referral"', 'name="&d;&d;&d;&d;&d;&d;"')
    (tmp_path / "evil.bpmn").write_text(evil)
    started = time.perf_counter()
    code, lines = validate(tmp_path / "evil.bpmn")
    assert time.perf_counter() - started < 2
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"{display_path(tmp_path / 'evil.bpmn')}: the file contains a document type "
                               "or entity declaration (<!DOCTYPE on line 2)")


def test_a_missing_file_is_a_usage_error(validate, tmp_path):
    code, lines = validate(tmp_path / "nothing.bpmn")
    assert code == 2 and "does not exist" in "\n".join(lines)
