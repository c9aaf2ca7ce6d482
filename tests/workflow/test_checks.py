"""check_pathway: every validation rule, each with a file that breaks it, and what the problems
say — the file, the element's id and its name (what the editor highlights) and a message a
coordinator can act on. The hostile-XML defences are in test_hostile_xml.py, the command line
in test_validate_cli.py.

The good pathway (bpmn/checks/pathway.bpmn with shared/consent_steps.bpmn and shared/band.dmn)
passes every check; each case breaks one rule, by a small edit or with a file of
bpmn/checks/invalid/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.workflow.checks import CheckResult, check_pathway, problems_as_dicts
from app.workflow.lint import SpecProblem
from app.workflow.specs import PathwayInvalid, discover_pathways, parse_pathway

CHECKS = Path(__file__).parent / "bpmn" / "checks"
ROOT = Path(__file__).resolve().parents[2]
ROLES = {"caseworker", "provider", "coordinator"}
FORMS = {"intake", "answer", "consent"}
OPERATIONS = {"notify_provider"}
GOOD = ("pathway.bpmn", "shared/consent_steps.bpmn", "shared/band.dmn")


def read(name: str) -> str:
    return (CHECKS / name).read_text(encoding="utf-8")


def good_files() -> dict[str, str]:
    return {name: read(name) for name in GOOD}


def edited(name: str, old: str, new: str) -> dict[str, str]:
    files = good_files()
    assert old in files[name], f"{old!r} is not in {name}"
    files[name] = files[name].replace(old, new)
    return files


def check(files: dict, main: str = "pathway.bpmn", **options) -> CheckResult:
    return check_pathway(files, main, **{"form_keys": FORMS, "operations": OPERATIONS, "roles": ROLES, **options})


def where(result: CheckResult) -> list[tuple[str | None, str | None, str | None]]:
    return [(p.file, p.element_id, p.element_name) for p in result.problems]


def the_problem(result: CheckResult) -> SpecProblem:
    assert not result.ok and result.parsed is None
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    return result.problems[0]


# -- the good pathway --------------------------------------------------------------------------


def test_the_good_pathway_passes_every_check():
    result = check(good_files())
    assert result.ok and result.problems == []
    assert result.parsed.process_id == "intake_pathway"
    assert [(t.name, t.lane) for t in result.parsed.user_tasks] == [
        ("ask", "caseworker"), ("answer", "provider"), ("ask_consent", "caseworker")]
    assert list(result.parsed.subprocess_specs) == ["consent_steps"]
    assert result.files == good_files() and result.decision_ids == ["band"]


def test_bytes_are_accepted_and_returned_as_text():
    files = {name: text.encode("utf-8") for name, text in good_files().items()}
    files["pathway.bpmn"] = b"\xef\xbb\xbf" + files["pathway.bpmn"]  # a UTF-8 byte order mark is fine
    result = check(files)
    assert result.ok and result.files == good_files()


def test_parse_pathway_runs_the_same_checks():
    assert parse_pathway(good_files(), "pathway.bpmn", FORMS, OPERATIONS, roles=ROLES).process_id == "intake_pathway"
    with pytest.raises(PathwayInvalid) as info:
        parse_pathway({"no_default_flow.bpmn": read("invalid/no_default_flow.bpmn")}, "no_default_flow.bpmn")
    assert info.value.problems[0].element_id == "age_check"
    with pytest.raises(PathwayInvalid, match="the main file must be a .bpmn file"):
        parse_pathway({"band.dmn": read("shared/band.dmn")}, "band.dmn")


# -- one failing file per rule -----------------------------------------------------------------
# (name of the case, files, expected (file, element id, element name), start of the message)

RULES = [
    pytest.param(
        edited("pathway.bpmn", "<bpmn:endEvent id=\"end\" name=\"Done\">", "<bpmn:endEvent id=\"end\" name=\"Done\""),
        ("pathway.bpmn", None, None), "XML syntax error at line", id="well-formed XML"),
    pytest.param(
        edited("pathway.bpmn", '<bpmn:endEvent id="end"', '<bpmn:bogus /><bpmn:endEvent id="end"'),
        ("pathway.bpmn", None, None), "Element 'bpmn:bogus': This element is not expected", id="BPMN XSD"),
    pytest.param(
        edited("shared/band.dmn", 'hitPolicy="UNIQUE"', 'hitPolicy="SOMETIMES"'),
        ("shared/band.dmn", None, None), "Element 'dmn:decisionTable', attribute 'hitPolicy'", id="DMN XSD"),
    pytest.param(
        edited("pathway.bpmn", "<bpmn:conditionExpression>band == 'child'</bpmn:conditionExpression>", ""),
        ("pathway.bpmn", "f_child", "A child"), "Non-default exclusive outgoing sequence flow without condition",
        id="SpiffWorkflow structure"),
    pytest.param(
        edited("pathway.bpmn", "score = 1 if band == 'child' else 0", "score = __import__('os').getcwd()"),
        ("pathway.bpmn", "score", "Score the answer"), "script: call to '__import__' is not allowed",
        id="safe expression: script"),
    pytest.param(
        edited("pathway.bpmn", "band == 'child'</bpmn:", "band.__class__</bpmn:"),
        ("pathway.bpmn", "f_child", "A child"),
        "condition on the flow to 'get_consent': attribute '__class__' is not allowed",
        id="safe expression: condition"),
    pytest.param(
        edited("pathway.bpmn", "value=\"'provider'\"", "value=\"open('/etc/passwd')\""),
        ("pathway.bpmn", "notify", "Tell the provider"), "parameter 'who': call to 'open' is not allowed",
        id="safe expression: service task parameter"),
    pytest.param(
        edited("shared/band.dmn", "<text>'child'</text>", "<text>eval('1')</text>"),
        ("shared/band.dmn", "r_child_band", "rule 1 (Under 18), Band"),
        "rule 1 output entry: call to 'eval' is not allowed", id="safe expression: DMN cell"),
    pytest.param(
        edited("pathway.bpmn", '"P2D"', '"P2X"'),
        ("pathway.bpmn", "wait", "Wait two days"), "timer 'P2X' is not a valid ISO 8601 duration", id="timer literal"),
    pytest.param(
        edited("pathway.bpmn", 'name="formKey" value="intake"', 'name="form" value="intake"'),
        ("pathway.bpmn", "ask", "Ask the questions"), "user task has no form: add the property formKey",
        id="user task without a form key"),
    pytest.param(
        edited("pathway.bpmn", 'value="answer"', 'value="no_such_form"'),
        ("pathway.bpmn", "answer", "Answer the referral"), "form 'no_such_form' has no definition in forms/",
        id="user task with an unknown form"),
    pytest.param(
        edited("pathway.bpmn", 'name="provider"', 'name="Partner agency"'),
        ("pathway.bpmn", "answer", "Answer the referral"),
        "user task is in the lane 'Partner agency', which is not a role: lanes must be named caseworker, coordinator "
        "or provider", id="user task in a lane that is not a role"),
    pytest.param(
        edited("pathway.bpmn", 'name="provider"', 'name="Provider"'),
        ("pathway.bpmn", "answer", "Answer the referral"),
        "user task is in the lane 'Provider', which is not a role (lane names are lower case: 'provider')",
        id="user task in a capitalised lane"),
    pytest.param(
        edited("pathway.bpmn", '<spiffworkflow:serviceTaskOperator id="notify_provider"',
               '<spiffworkflow:serviceTaskOperator id="launch_missiles"'),
        ("pathway.bpmn", "notify", "Tell the provider"),
        "service task operator 'launch_missiles' is unknown (known: notify_provider)", id="unknown operation"),
    pytest.param(
        edited("pathway.bpmn", 'calledElement="consent_steps"', 'calledElement="consent_stpes"'),
        ("pathway.bpmn", "get_consent", "Get consent"), "called process 'consent_stpes' was not found",
        id="called pathway does not exist"),
    pytest.param(
        {**good_files(), "shared/band.dmn": read("invalid/no_catch_all.dmn")},
        ("shared/band.dmn", "band_table", "Child or adult"),
        "decision table has no catch-all rule: when no rule matches, the decision sets nothing; add a last rule with "
        "'-' in every input column", id="DMN table without a catch-all rule"),
    pytest.param(
        {name: text for name, text in good_files().items() if name != "shared/band.dmn"},
        ("pathway.bpmn", "decide", "Decide the band"), "decision 'band' is not defined in any .dmn file",
        id="called decision does not exist"),
    pytest.param(
        edited("shared/band.dmn", 'hitPolicy="UNIQUE"', 'hitPolicy="FIRST"'),
        ("shared/band.dmn", "band_table", "Child or adult"), "hit policy 'FIRST' is not supported",
        id="unsupported hit policy"),
    pytest.param(
        edited("pathway.bpmn", '<bpmn:sequenceFlow id="f9" sourceRef="score" targetRef="end" />',
               '<bpmn:sequenceFlow id="f9" sourceRef="score" targetRef="ask" />'),
        ("pathway.bpmn", "f9", "from Score the answer to Ask the questions"),
        "the sequence flow from 'score' back to 'ask' forms a loop, which is not allowed: remove it and repeat the "
        "steps with a loop task (standard loop) or a call activity", id="back-edge loop"),
]


@pytest.mark.parametrize(("files", "located", "message"), RULES)
def test_each_rule_names_the_element_that_breaks_it(files, located, message):
    problems = [p for p in check(files).problems if p.message.startswith(message)]
    assert problems, [str(p) for p in check(files).problems]
    assert (problems[0].file, problems[0].element_id, problems[0].element_name) == located


def test_user_tasks_must_sit_in_a_lane_named_after_a_role():
    result = check({"wrong_lanes.bpmn": read("invalid/wrong_lanes.bpmn")}, "wrong_lanes.bpmn")
    assert [str(p) for p in result.problems] == [
        "wrong_lanes.bpmn:tell_story (Tell the story): user task is in the lane 'Survivor', which is not a role: "
        "lanes must be named caseworker, coordinator or provider",
        "wrong_lanes.bpmn:check_story (Check the story): user task is not in a lane: put it in the lane of the "
        "role that does it (caseworker, coordinator or provider)",
    ]


def test_roles_are_only_checked_when_given():
    assert check({"wrong_lanes.bpmn": read("invalid/wrong_lanes.bpmn")}, "wrong_lanes.bpmn", roles=None).ok
    result = check(good_files(), roles={"caseworker"})
    assert where(result) == [("pathway.bpmn", "answer", "Answer the referral")]
    assert result.problems[0].message.endswith("lanes must be named caseworker")


def test_exclusive_gateways_need_a_default_flow():
    problem = the_problem(check({"no_default_flow.bpmn": read("invalid/no_default_flow.bpmn")}, "no_default_flow.bpmn"))
    assert str(problem) == (
        "no_default_flow.bpmn:age_check (How old?): exclusive gateway has 2 outgoing flows and none is the default: "
        "mark one of them as the default flow, taken when no condition is true")


def test_a_gateway_whose_only_flow_has_a_condition_is_refused_too():
    xml = read("invalid/no_default_flow.bpmn")
    xml = xml.replace("<bpmn:outgoing>to_adult</bpmn:outgoing>", "")
    xml = xml.replace('<bpmn:sequenceFlow id="to_adult" sourceRef="age_check" targetRef="adult_end">',
                      '<bpmn:sequenceFlow id="to_adult" sourceRef="start2" targetRef="adult_end">')
    xml = xml.replace('<bpmn:endEvent id="adult_end">', '<bpmn:startEvent id="start2"><bpmn:outgoing>to_adult'
                      '</bpmn:outgoing></bpmn:startEvent><bpmn:endEvent id="adult_end">')
    problems = check({"one.bpmn": xml}, "one.bpmn").problems
    assert any(p.element_id == "age_check" and "has one outgoing flow and it has a condition" in p.message
               for p in problems), [str(p) for p in problems]


def test_a_unique_table_needs_a_catch_all_rule_and_a_collect_table_does_not():
    dmn = read("invalid/no_catch_all.dmn")
    problem = the_problem(check({"band.dmn": dmn}, "band.dmn"))
    assert (problem.file, problem.element_id, problem.element_name) == ("band.dmn", "band_table", "Child or adult")
    # COLLECT gathers the outputs of every matching rule: a catch-all would add its output to
    # every answer, so none is required (no match sets nothing, as with UNIQUE).
    assert check({"band.dmn": dmn.replace('hitPolicy="UNIQUE"', 'hitPolicy="COLLECT"')}, "band.dmn").ok


@pytest.mark.parametrize("empty", ["<text>-</text>", "<text></text>", "<text />"])
def test_a_catch_all_rule_has_only_empty_or_dash_input_entries(empty):
    assert check({"band.dmn": read("shared/band.dmn").replace("<text>-</text>", empty)}, "band.dmn").ok


def test_rules_after_the_catch_all_are_refused():
    dmn = read("shared/band.dmn")
    child, adult = dmn.index('      <rule id="r_child">'), dmn.index('      <rule id="r_adult">')
    end = dmn.index("</rule>", adult) + len("</rule>\n")
    swapped = dmn[:child] + dmn[adult:end] + dmn[child:adult] + dmn[end:]
    problem = the_problem(check({"band.dmn": swapped}, "band.dmn"))
    assert str(problem) == (
        "band.dmn:r_child (rule 2 (Under 18)): rule 2 can never apply: rule 1 before it matches everything "
        "(the first matching rule decides); move the catch-all rule to the end")


def test_a_rule_with_one_condition_is_not_a_catch_all():
    dmn = read("shared/band.dmn").replace("<text>-</text>", "<text>&gt;= 18</text>")
    assert the_problem(check({"band.dmn": dmn}, "band.dmn")).element_id == "band_table"


def test_a_dmn_file_alone_is_checked_as_decision_tables():
    result = check({"band.dmn": read("shared/band.dmn")}, "band.dmn")
    assert result.ok and result.parsed is None and result.decision_ids == ["band"]
    broken = read("shared/band.dmn").replace("<text>'adult'</text>", "<text>__import__('os')</text>")
    problem = the_problem(check({"band.dmn": broken}, "band.dmn"))
    assert (problem.element_id, problem.element_name) == ("r_adult_band", "rule 2 (Everyone else), Band")


def test_every_dmn_file_is_checked_even_when_no_task_calls_it():
    files = {**good_files(), "shared/unused.dmn": read("invalid/no_catch_all.dmn").replace('"band', '"unused')}
    assert where(check(files)) == [("shared/unused.dmn", "unused_table", "Child or adult")]


def test_two_files_defining_the_same_decision_are_refused():
    files = {**good_files(), "shared/band_copy.dmn": read("shared/band.dmn")}
    assert [str(p) for p in check(files).problems] == [
        "shared/band_copy.dmn:band (Child or adult): decision 'band' is also defined in shared/band.dmn"]


def test_a_dmn_file_must_define_one_decision():
    dmn = read("shared/band.dmn")
    two = dmn.replace("</definitions>", '<decision id="other" name="Other" /></definitions>')
    assert check({"band.dmn": two}, "band.dmn").problems[0].message == (
        "a .dmn file must define exactly one decision, this one defines 2 (band, other)")
    none = '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="n" namespace="x" />'
    assert "defines 0" in the_problem(check({"band.dmn": none}, "band.dmn")).message
    other = '<definitions xmlns="urn:something-else"><decision id="x" /></definitions>'
    assert the_problem(check({"band.dmn": other}, "band.dmn")).message.startswith("not a DMN file")


def test_all_problems_are_reported_together_each_with_its_element():
    files = edited("pathway.bpmn", '"P2D"', '"soon"')
    files["pathway.bpmn"] = files["pathway.bpmn"].replace('value="answer"', 'value="nope"')
    files["shared/band.dmn"] = read("invalid/no_catch_all.dmn")
    assert set(where(check(files))) == {
        ("pathway.bpmn", "wait", "Wait two days"),
        ("pathway.bpmn", "answer", "Answer the referral"),
        ("shared/band.dmn", "band_table", "Child or adult"),
    }


# -- called pathways: the resolver ------------------------------------------------------------


def without_consent() -> dict[str, str]:
    return {name: text for name, text in good_files().items() if name != "shared/consent_steps.bpmn"}


def test_a_called_process_the_files_lack_is_asked_of_the_resolver():
    asked = []

    def resolve(process_id):
        asked.append(process_id)
        if process_id == "consent_steps":
            return {"shared/consent_steps.bpmn": read("shared/consent_steps.bpmn")}
        return None

    result = check(without_consent(), resolve_process=resolve)
    assert result.ok, [str(p) for p in result.problems]
    assert asked == ["consent_steps"]
    assert list(result.parsed.subprocess_specs) == ["consent_steps"]
    assert result.files["shared/consent_steps.bpmn"] == read("shared/consent_steps.bpmn")
    assert [t.name for t in result.parsed.user_tasks] == ["ask", "answer", "ask_consent"]


def test_a_process_nobody_defines_names_the_call_activity_and_the_process():
    asked = []
    result = check({"calls_missing.bpmn": read("invalid/calls_missing.bpmn")}, "calls_missing.bpmn",
                   resolve_process=lambda pid: asked.append(pid))
    assert asked == ["needs_assessment"]
    assert [str(p) for p in result.problems] == [
        "calls_missing.bpmn:assess (Assess the needs): called process 'needs_assessment' was not found: "
        "no file defines it; check the called element's process id"]
    assert problems_as_dicts(result.problems) == [{
        "file": "calls_missing.bpmn", "element_id": "assess", "element_name": "Assess the needs",
        "message": "called process 'needs_assessment' was not found: no file defines it; check the called "
                   "element's process id"}]


def test_the_resolver_may_offer_a_whole_published_pathway():
    """Only what is needed is taken: the file defining the process (renamed when a different file
    of the pathway has its name) and, from the same offer, the decisions it calls that the
    files lack. Files defining what the pathway already has are left out."""
    other_band = read("shared/band.dmn").replace("'adult'", "'grown-up'")
    steps = read("shared/consent_steps.bpmn").replace(
        '<bpmn:sequenceFlow id="c2" sourceRef="ask_consent" targetRef="consent_end" />',
        '<bpmn:businessRuleTask id="rate" name="Rate"><bpmn:extensionElements><spiffworkflow:calledDecisionId>'
        'rating</spiffworkflow:calledDecisionId></bpmn:extensionElements></bpmn:businessRuleTask>'
        '<bpmn:sequenceFlow id="c2" sourceRef="ask_consent" targetRef="rate" />'
        '<bpmn:sequenceFlow id="c3" sourceRef="rate" targetRef="consent_end" />')
    rating = read("shared/band.dmn").replace('id="band"', 'id="rating"').replace('"band_table"', '"rating_table"')
    published = {"consent_pathway.bpmn": read("pathway.bpmn").replace("intake_pathway", "published_pathway"),
                 "pathway.bpmn": steps, "shared/band.dmn": other_band, "shared/rating.dmn": rating,
                 "notes.bpmn": "<not xml"}
    result = check(without_consent(), resolve_process=lambda pid: published)
    assert result.ok, [str(p) for p in result.problems]
    assert sorted(result.files) == ["called/pathway.bpmn", "pathway.bpmn", "shared/band.dmn", "shared/rating.dmn"]
    assert result.files["shared/band.dmn"] == read("shared/band.dmn")  # the pathway's own table is kept
    assert result.decision_ids == ["band", "rating"]


def test_files_from_the_resolver_pass_the_same_checks():
    hostile = read("shared/consent_steps.bpmn").replace(
        "<bpmn:definitions", '<!DOCTYPE x [<!ENTITY e "boom">]><bpmn:definitions', 1)
    result = check(without_consent(), resolve_process=lambda pid: {"shared/consent_steps.bpmn": hostile})
    assert result.problems[-1].element_id == "get_consent"  # refused, so the process is still missing
    broken = read("shared/consent_steps.bpmn").replace('value="consent"', 'value="unknown_form"')
    result = check(without_consent(), resolve_process=lambda pid: {"shared/consent_steps.bpmn": broken})
    assert where(result) == [("shared/consent_steps.bpmn", "ask_consent", "Ask for consent")]


# -- the result ---------------------------------------------------------------------------------


def test_problem_text_and_dicts():
    problem = SpecProblem("a.bpmn", "t1", "bad", element_name="Ask")
    assert str(problem) == "a.bpmn:t1 (Ask): bad"
    assert str(SpecProblem("a.bpmn", "t1", "bad")) == "a.bpmn:t1: bad"
    assert str(SpecProblem("a.bpmn", "t1", "bad", element_name="t1")) == "a.bpmn:t1: bad"
    assert str(SpecProblem(None, None, "bad")) == "bad"
    assert SpecProblem("a.bpmn", "t1", "bad", element_name="Ask") == SpecProblem("a.bpmn", "t1", "bad")
    assert json.loads(json.dumps(problems_as_dicts([problem]))) == [
        {"file": "a.bpmn", "element_id": "t1", "element_name": "Ask", "message": "bad"}]


def test_the_main_file_must_be_there_and_define_one_executable_process():
    assert [str(p) for p in check({}, "x.bpmn").problems] == ["x.bpmn: main file is missing"]
    files = edited("pathway.bpmn", 'isExecutable="true"', 'isExecutable="false"')
    assert [str(p) for p in check(files).problems] == [
        "pathway.bpmn: expected exactly one executable process in the main file, found 0"]


@pytest.mark.parametrize("content", [
    "", b"", b"\x00\x01\x02", "<a/>", "<bpmn:definitions", "just text", 12345, None,
    "<" * 5000, "<a>" * 20_000, '<?xml version="1.0"?><root xmlns="urn:x"/>',
    '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"><decision/></definitions>',
])
@pytest.mark.parametrize("name", ["pathway.bpmn", "shared/band.dmn", "notes.txt"])
def test_bad_input_never_raises(content, name):
    files = {**good_files(), name: content}
    result = check(files, "pathway.bpmn")
    assert isinstance(result, CheckResult) and not result.ok
    assert all(isinstance(p.message, str) and p.message for p in result.problems)


def test_every_pathway_in_workflows_passes_with_the_real_forms_operations_and_roles(app):
    from app.auth.models import Role
    from app.formkit import form_keys
    from app.workflow import service_tasks

    roles = {role.value for role in Role if role is not Role.admin}
    assert roles == ROLES
    with app.app_context():
        keys, operations = form_keys(), service_tasks.operations()
    pathways = discover_pathways(ROOT / "workflows")
    assert {"cp_referral", "gbv_referral", "ct_referral", "demo_referral"} <= set(pathways)
    for process_id, (main, files) in pathways.items():
        result = check_pathway(files, main, form_keys=keys, operations=operations, roles=roles)
        assert result.ok, [str(p) for p in result.problems]
        assert result.parsed.process_id == process_id
        assert all(task.lane in roles for task in result.parsed.user_tasks)
