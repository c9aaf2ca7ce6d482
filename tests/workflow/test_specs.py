"""Parsing, linting and serializing pathway specs, and running them under the safe engine."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from app.workflow.safe_eval import make_script_engine
from app.workflow.specs import (
    ParsedPathway,
    PathwayInvalid,
    SpecProblem,
    UserTaskInfo,
    content_hash,
    deserialize_specs,
    discover_pathways,
    lint_pathway,
    parse_pathway,
    serialize_specs,
)

BPMN = Path(__file__).parent / "bpmn"
SCRIPT = "urgency = 'high' if score &gt; 3 else 'normal'"
CONDITION = "age &lt; 18"
TIMER = '"PT48H"'


def text(name: str) -> str:
    return (BPMN / name).read_text(encoding="utf-8")


def problems_of(files: dict[str, str], main: str, form_keys: set[str] | None = None) -> list[str]:
    with pytest.raises(PathwayInvalid) as info:
        parse_pathway(files, main, form_keys)
    return [str(problem) for problem in info.value.problems]


def with_script(script: str) -> dict[str, str]:
    return {"script.bpmn": text("script.bpmn").replace(SCRIPT, escape(script))}


def with_condition(condition: str) -> dict[str, str]:
    return {"routing.bpmn": text("routing.bpmn").replace(CONDITION, escape(condition))}


def with_timer(expression: str) -> dict[str, str]:
    return {"timer.bpmn": text("timer.bpmn").replace(TIMER, escape(expression))}


def raw_spec(files: dict[str, str], process_id: str):
    """Parse with Spiff alone — no lint — to prove the engine itself refuses unsafe code."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    for name, xml in files.items():
        parser.add_bpmn_str(xml.encode(), name)
    return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)


def start(spec, subprocess_specs, engine=None) -> BpmnWorkflow:
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=engine or make_script_engine())
    workflow.do_engine_steps()
    return workflow


def complete_ready_task(workflow: BpmnWorkflow, **data) -> None:
    task = workflow.get_tasks(state=TaskState.READY, manual=True)[0]
    task.set_data(**data)
    task.run()
    workflow.do_engine_steps()


def run(parsed: ParsedPathway, **data) -> BpmnWorkflow:
    workflow = start(parsed.spec, parsed.subprocess_specs)
    complete_ready_task(workflow, **data)
    return workflow


# --- unsafe code is rejected at upload and cannot run -------------------------------------

PWNED = "__import__('os').system('touch {target}')"
ATTACKS = [
    (PWNED, "call to '__import__' is not allowed"),
    ("().__class__.__base__.__subclasses__()", "attribute '__class__' is not allowed"),
    ("open('/etc/passwd').read()", "call to 'open' is not allowed"),
    ("eval('1 + 1')", "call to 'eval' is not allowed"),
    ("getattr(score, 'real')", "call to 'getattr' is not allowed"),
    ("(lambda: 1)()", "lambda is not allowed"),
    ("score.__class__", "attribute '__class__' is not allowed"),
]


@pytest.mark.parametrize(("code", "message"), ATTACKS)
def test_unsafe_script_task_is_rejected(code, message, tmp_path):
    problems = problems_of(with_script("x = " + code.format(target=tmp_path / "p")), "script.bpmn")
    assert f"script.bpmn:triage (Triage): script: {message}" in problems


@pytest.mark.parametrize(("code", "message"), ATTACKS)
def test_unsafe_gateway_condition_is_rejected(code, message, tmp_path):
    problems = problems_of(with_condition(code.format(target=tmp_path / "p")), "routing.bpmn")
    assert f"routing.bpmn:to_child (from Which service? to set_child): condition on the flow to 'set_child': " \
           f"{message}" in problems


def test_the_attack_payload_is_real_under_spiffs_default_engine(tmp_path):
    # Control: without the safe engine the same diagram really runs a shell command.
    target = tmp_path / "pwned"
    workflow = start(*raw_spec(with_script(PWNED.format(target=target)), "scripted"), PythonScriptEngine())
    complete_ready_task(workflow, score=1)
    assert target.exists()


def test_unsafe_script_cannot_run_under_the_safe_engine(tmp_path):
    target = tmp_path / "pwned"
    workflow = start(*raw_spec(with_script(PWNED.format(target=target)), "scripted"))
    with pytest.raises(Exception, match="__import__"):
        complete_ready_task(workflow, score=1)
    assert not target.exists()


def test_unsafe_condition_cannot_run_under_the_safe_engine(tmp_path):
    target = tmp_path / "pwned"
    workflow = start(*raw_spec(with_condition(PWNED.format(target=target)), "routing"))
    with pytest.raises(Exception, match="__import__"):
        complete_ready_task(workflow, age=10, services=[], reply={})
    assert not target.exists()


@pytest.mark.parametrize("code", ["().__class__.__base__.__subclasses__()", "open('/etc/passwd')",
                                  "eval('1')", "getattr(score, 'real')", "(lambda: 1)()"])
def test_other_attacks_cannot_run_under_the_safe_engine(code):
    workflow = start(*raw_spec(with_script("x = " + code), "scripted"))
    with pytest.raises(Exception, match="not allowed"):
        complete_ready_task(workflow, score=1)
    assert "x" not in workflow.get_tasks(state=TaskState.ERROR)[0].data


# --- ordinary pathways work end to end ------------------------------------------------------


@pytest.mark.parametrize(("data", "branch"), [
    ({"age": 10, "services": [], "reply": {}}, "child"),
    ({"age": 30, "services": ["GBV", "Health"], "reply": {}}, "gbv"),
    ({"age": 30, "services": [], "reply": {"decision": "ACCEPT"}}, "accepted"),
    ({"age": 30, "services": [], "reply": {"decision": "DECLINE"}}, "other"),
])
def test_gateway_conditions_route_to_the_right_branch(data, branch):
    workflow = run(parse_pathway({"routing.bpmn": text("routing.bpmn")}, "routing.bpmn"), **data)
    assert workflow.is_completed()
    assert workflow.data["branch"] == branch


@pytest.mark.parametrize(("score", "urgency"), [(5, "high"), (1, "normal")])
def test_script_task_sets_task_data(score, urgency):
    workflow = run(parse_pathway({"script.bpmn": text("script.bpmn")}, "script.bpmn"), score=score)
    assert workflow.data == {"score": score, "urgency": urgency}


@pytest.mark.parametrize(("age", "band"), [(10, "child"), (17, "child"), (18, "adult"), (70, "adult")])
def test_dmn_decision_with_comparison_entries_runs_under_the_safe_engine(age, band):
    files = {"decision.bpmn": text("decision.bpmn"), "shared/age_band.dmn": text("shared/age_band.dmn")}
    workflow = run(parse_pathway(files, "decision.bpmn"), age=age)
    assert workflow.data["band"] == band


def test_message_payload_correlation_and_post_script_run():
    workflow = run(parse_pathway({"message.bpmn": text("message.bpmn")}, "message.bpmn"),
                   case_id="C1", service="gbv")
    (event,) = workflow.get_events()
    assert event.payload == {"case": "C1", "service": "GBV"}
    assert event.correlations == {"MainCorrelationKey": {"case_ref": "C1"}}


# --- what parse_pathway returns ---------------------------------------------------------------


def test_parsed_pathway_describes_the_pathway():
    parsed = parse_pathway({"routing.bpmn": text("routing.bpmn")}, "routing.bpmn", {"intake"})
    assert (parsed.process_id, parsed.title, parsed.form_keys) == ("routing", "Routing demo", {"intake"})
    assert parsed.user_tasks == [UserTaskInfo(name="intake", title="Intake", form_key="intake",
                                              lane="Caseworker", process_id="routing", allow_back=False)]


def test_user_tasks_of_called_processes_are_included():
    files = {"referral.bpmn": text("referral.bpmn"), "shared/consent.bpmn": text("shared/consent.bpmn")}
    parsed = parse_pathway(files, "referral.bpmn", {"consent"})
    assert list(parsed.subprocess_specs) == ["consent"]
    assert parsed.user_tasks == [UserTaskInfo(name="ask_consent", title="Ask for consent", form_key="consent",
                                              lane="Client", process_id="consent", allow_back=True)]


def test_lint_pathway_can_be_called_on_parsed_specs():
    parsed = parse_pathway({"script.bpmn": text("script.bpmn")}, "script.bpmn")
    assert lint_pathway(parsed.spec, parsed.subprocess_specs, {"intake"}) == []
    assert lint_pathway(parsed.spec, parsed.subprocess_specs, {"other"}) == [
        SpecProblem("script.bpmn", "intake", "form 'intake' has no definition in forms/")]


# --- timers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("expression", ['"PT48H"', '"P2D"', "PT48H", "wait", "'PT' + str(hours) + 'H'"])
def test_timer_literals_and_variables_are_accepted(expression):
    parse_pathway(with_timer(expression), "timer.bpmn")


@pytest.mark.parametrize(("expression", "message"), [
    ('"PT48X"', "timer 'PT48X' is not a valid ISO 8601 duration"),
    ('"48 hours"', "timer '48 hours' is not a valid ISO 8601 duration"),
    ("48", "timer 48 is not a valid ISO 8601 duration"),
    ("__import__('os')", "timer: call to '__import__' is not allowed"),
    ("", "timer is empty"),
])
def test_bad_timers_are_rejected(expression, message):
    assert f"timer.bpmn:wait (Wait 48 hours): {message}" in problems_of(with_timer(expression), "timer.bpmn")[0]


def test_timer_expressions_run_under_the_safe_engine():
    parsed = parse_pathway(with_timer('"PT48H"'), "timer.bpmn")
    workflow = start(parsed.spec, parsed.subprocess_specs)
    workflow.refresh_timers()
    workflow.do_engine_steps()
    (event,) = workflow.waiting_events()
    due = datetime.fromisoformat(event.value) - datetime.now(UTC)
    assert not workflow.is_completed() and timedelta(hours=47) < due <= timedelta(hours=48)

    parsed = parse_pathway(with_timer('"PT0S"'), "timer.bpmn")
    workflow = start(parsed.spec, parsed.subprocess_specs)
    workflow.refresh_timers()
    workflow.do_engine_steps()
    assert workflow.is_completed()


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("timeDate", '"2030-01-01T10:00:00+00:00"', '"next tuesday"'),
    ("timeCycle", '"R3/PT1H"', '"R3/PT1X"'),
])
def test_date_and_cycle_timers_are_validated(kind, good, bad):
    xml = text("timer.bpmn").replace("timeDuration", kind)
    parse_pathway({"timer.bpmn": xml.replace(TIMER, good)}, "timer.bpmn")
    problems = problems_of({"timer.bpmn": xml.replace(TIMER, bad)}, "timer.bpmn")
    assert "is not a valid ISO 8601" in problems[0]


# --- structural problems -------------------------------------------------------------------------


def test_user_task_without_form_key_is_rejected():
    xml = text("script.bpmn").replace('name="formKey"', 'name="somethingElse"')
    assert problems_of({"script.bpmn": xml}, "script.bpmn") == [
        "script.bpmn:intake (Intake): user task has no form: add the property formKey with the name of a form"]


def test_form_key_must_have_a_form_definition():
    assert problems_of({"script.bpmn": text("script.bpmn")}, "script.bpmn", {"consent"}) == [
        "script.bpmn:intake (Intake): form 'intake' has no definition in forms/"]


def test_broken_xml_is_rejected_with_its_line():
    problems = problems_of({"script.bpmn": text("script.bpmn")[:400]}, "script.bpmn")
    assert len(problems) == 1 and problems[0].startswith("script.bpmn: XML syntax error at line")


def test_xsd_invalid_bpmn_is_rejected():
    xml = text("script.bpmn").replace('<bpmn:endEvent id="end">', '<bpmn:bogus /><bpmn:endEvent id="end">')
    (problem,) = problems_of({"script.bpmn": xml}, "script.bpmn")
    assert problem.startswith("script.bpmn: Element 'bpmn:bogus': This element is not expected")
    assert problem.endswith("(line 26)")


def test_xsd_invalid_dmn_is_rejected():
    dmn = text("shared/age_band.dmn").replace('hitPolicy="UNIQUE"', 'hitPolicy="SOMETIMES"')
    problems = problems_of({"decision.bpmn": text("decision.bpmn"), "shared/a.dmn": dmn}, "decision.bpmn")
    assert problems[0].startswith("shared/a.dmn: Element 'dmn:decisionTable', attribute 'hitPolicy'")


def test_missing_called_process_is_rejected():
    assert problems_of({"referral.bpmn": text("referral.bpmn")}, "referral.bpmn") == [
        "referral.bpmn:get_consent (Get consent): called process 'consent' was not found: no file defines it; "
        "check the called element's process id"]


def test_missing_decision_is_rejected():
    assert problems_of({"decision.bpmn": text("decision.bpmn")}, "decision.bpmn") == [
        "decision.bpmn:band (Age band): decision 'age_band' is not defined in any .dmn file"]


def test_back_edge_loop_is_rejected():
    assert problems_of({"loop.bpmn": text("loop.bpmn")}, "loop.bpmn") == [
        "loop.bpmn:again (from check to Ask): the sequence flow from 'check' back to 'ask' forms a loop, which is "
        "not allowed: "
        "remove it and repeat the steps with a loop task (standard loop) or a call activity"]


def test_main_file_must_define_exactly_one_executable_process():
    xml = text("script.bpmn").replace('isExecutable="true"', 'isExecutable="false"')
    assert problems_of({"script.bpmn": xml}, "script.bpmn") == [
        "script.bpmn: expected exactly one executable process in the main file, found 0"]
    assert problems_of({}, "script.bpmn") == ["script.bpmn: main file is missing"]


def test_unsupported_files_and_duplicate_process_ids_are_reported():
    files = {"script.bpmn": text("script.bpmn"), "shared/copy.bpmn": text("script.bpmn"), "notes.txt": "hi"}
    problems = problems_of(files, "script.bpmn")
    assert "notes.txt: unsupported file type (expected .bpmn or .dmn)" in problems
    assert any("Duplicate process ID: scripted" in p for p in problems)


def test_all_problems_are_reported_together():
    xml = text("script.bpmn").replace(SCRIPT, "import os").replace('name="formKey"', 'name="x"')
    assert problems_of({"script.bpmn": xml}, "script.bpmn") == [
        "script.bpmn:intake (Intake): user task has no form: add the property formKey with the name of a form",
        "script.bpmn:triage (Triage): script: import is not allowed",
    ]


def test_pathway_invalid_lists_its_problems():
    error = PathwayInvalid([SpecProblem("a.bpmn", "x", "bad"), SpecProblem(None, None, "worse")])
    assert str(error) == "invalid pathway:\n- a.bpmn:x: bad\n- worse"


# --- DMN, messages and extension scripts are linted too ------------------------------------------


@pytest.mark.parametrize(("old", "new", "message"), [
    ("&lt; 18", ".__class__", "rule 1 input entry '.__class__': attribute '__class__' is not allowed"),
    ("&lt; 18", "in [1, 2]", "rule 1 input entry 'in [1, 2]' runs as 'agein [1, 2]'; write '? in [1, 2]'"),
    ("'child'", "open('x')", "rule 1 output entry: call to 'open' is not allowed"),
    ("<text>age</text>", "<text>age.__class__</text>", "input 'Age': attribute '__class__' is not allowed"),
    ('hitPolicy="UNIQUE"', 'hitPolicy="FIRST"', "hit policy 'FIRST' is not supported"),
])
def test_bad_dmn_cells_are_rejected(old, new, message):
    dmn = text("shared/age_band.dmn").replace(old, new)
    files = {"decision.bpmn": text("decision.bpmn"), "shared/a.dmn": dmn}
    problems = problems_of(files, "decision.bpmn")
    assert any(p.startswith("shared/a.dmn:") and message in p for p in problems), problems


def test_question_mark_dmn_entries_are_accepted():
    dmn = text("shared/age_band.dmn").replace("&lt; 18", "? in [10, 11]")
    parsed = parse_pathway({"decision.bpmn": text("decision.bpmn"), "shared/a.dmn": dmn}, "decision.bpmn")
    assert run(parsed, age=11).data["band"] == "child"


@pytest.mark.parametrize(("old", "new", "message"), [
    ("case_id, 'service'", "case_id.__class__, 'service'",
     "send (Send referral): event expression: attribute '__class__'"),
    (">case<", ">open(case)<", "send (Send referral): correlation 'case_ref': call to 'open' is not allowed"),
    ("service.upper()", "service.format()", "intake (Intake): post-script: method 'format' is not allowed"),
])
def test_bad_message_expressions_and_extension_scripts_are_rejected(old, new, message):
    problems = problems_of({"message.bpmn": text("message.bpmn").replace(old, new)}, "message.bpmn")
    assert f"message.bpmn:{message}" in problems[0]


# --- serialization, discovery, hashing ------------------------------------------------------------


def test_serialized_specs_round_trip_and_run():
    files = {"routing.bpmn": text("routing.bpmn")}
    spec, subprocess_specs = deserialize_specs(serialize_specs(parse_pathway(files, "routing.bpmn")))
    workflow = start(spec, subprocess_specs)
    complete_ready_task(workflow, age=10, services=[], reply={})
    assert workflow.data["branch"] == "child"


def test_serialized_specs_with_call_activity_and_dmn_round_trip():
    files = {name: text(name) for name in ("referral.bpmn", "shared/consent.bpmn")}
    spec, subprocess_specs = deserialize_specs(serialize_specs(parse_pathway(files, "referral.bpmn")))
    workflow = start(spec, subprocess_specs)
    complete_ready_task(workflow, consent=True)
    assert workflow.is_completed() and workflow.data["consent"] is True

    files = {name: text(name) for name in ("decision.bpmn", "shared/age_band.dmn")}
    spec, subprocess_specs = deserialize_specs(serialize_specs(parse_pathway(files, "decision.bpmn")))
    workflow = start(spec, subprocess_specs)
    complete_ready_task(workflow, age=12)
    assert workflow.data["band"] == "child"


def test_serialization_is_deterministic():
    files = {"routing.bpmn": text("routing.bpmn")}
    assert serialize_specs(parse_pathway(files, "routing.bpmn")) == serialize_specs(
        parse_pathway(files, "routing.bpmn"))


def test_discover_pathways(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "referral.bpmn").write_text(text("referral.bpmn"))
    (tmp_path / "routing.bpmn").write_text(text("routing.bpmn"))
    (tmp_path / "shared" / "consent.bpmn").write_text(text("shared/consent.bpmn"))
    (tmp_path / "bands.dmn").write_text(text("shared/age_band.dmn"))
    (tmp_path / "README.md").write_text("not a pathway")
    found = discover_pathways(tmp_path)
    assert sorted(found) == ["referral", "routing"]
    main, files = found["referral"]
    assert main == "referral.bpmn"
    assert sorted(files) == ["bands.dmn", "referral.bpmn", "shared/consent.bpmn"]
    assert parse_pathway(files, main).process_id == "referral"


def test_discover_keys_a_broken_main_file_by_its_name(tmp_path):
    (tmp_path / "broken.bpmn").write_text("<bpmn:definitions")
    main, files = discover_pathways(tmp_path)["broken"]
    assert problems_of(files, main)[0].startswith("broken.bpmn: XML syntax error")


def test_content_hash():
    files = {"a.bpmn": "<a/>", "shared/b.dmn": "<b/>"}
    assert content_hash(files) == content_hash(dict(reversed(files.items())))
    assert len(content_hash(files)) == 64
    assert content_hash(files) != content_hash({**files, "a.bpmn": "<a />"})
    assert content_hash({"ab": "c"}) != content_hash({"a": "bc"})
