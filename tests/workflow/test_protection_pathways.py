"""The protection pathways (CP, GBV, CT) and their shared sub-processes, at engine level.

Parsed and linted as at publication, then run with SpiffWorkflow directly: every branch, the
data that flows into and out of the call activities, the urgency table, the trafficking
score, and that a linked referral cannot be started twice by going back. Service tasks are
answered by a stub script engine (the real handlers are exercised by the end-to-end
scenarios in tests/workflow/scenarios/). The answers given here are what the forms hand to
the workflow: non-personal answers and exposed personal ones only.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow

from app.workflow import runtime
from app.workflow.safe_eval import SafeScriptEngine
from app.workflow.specs import ParsedPathway, discover_pathways, parse_pathway

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
PATHWAYS = ("cp_referral", "gbv_referral", "ct_referral")
OPERATIONS = {"record_gaps", "send_referral", "start_linked_referral", "watch_targets", "send_reminders",
              "expire_overdue"}
SHARED = ("consent", "safety_assessment", "service_selection", "send_to_services")


@cache
def _form_keys() -> frozenset[str]:
    # The definitions themselves are checked when the app starts (some name lists that
    # only exist once the app registered them); here only their keys matter.
    return frozenset(p.stem for p in (ROOT / "forms").glob("*.yaml") if p.name != "lists.yaml")


@cache
def parsed(process_id: str) -> ParsedPathway:
    main, files = discover_pathways(WORKFLOWS)[process_id]
    return parse_pathway(files, main, set(_form_keys()), OPERATIONS)


class StubServices(SafeScriptEngine):
    """The safe engine, with service tasks answered here and recorded in ``calls``."""

    def __init__(self, gaps: list[str] | None = None) -> None:
        super().__init__()
        self.gaps = gaps or []
        self.calls: list[tuple[str, dict, dict]] = []

    def call_service(self, task, operation_name, operation_params, **_kwargs):
        params = {name: spec["value"] for name, spec in operation_params.items()}
        self.calls.append((operation_name, params, dict(task.data)))
        if operation_name == "record_gaps":
            result = self.gaps
        elif operation_name == "send_referral":
            result = {"sent": len(task.data["chosen_services"]), "blocked": 0}
        elif operation_name == "start_linked_referral":
            result = f"R-LINK-{params['pathway']}"
        elif operation_name == "watch_targets":  # nothing to wait for: the answers are followed in tests/referrals
            result = {"open": 0, "pending": 0, "follow_up": 0, "reminder_in": "P3650D", "deadline_in": "P3650D"}
        else:
            raise AssertionError(f"unexpected operator {operation_name}")
        return json.dumps(result)

    def operations(self) -> list[str]:
        """The operations called, without the answer-following loop's ``watch_targets``."""
        return [name for name, _params, _data in self.calls if name != "watch_targets"]


def start(process_id: str, engine: StubServices | None = None) -> BpmnWorkflow:
    pathway = parsed(process_id)
    workflow = BpmnWorkflow(pathway.spec, pathway.subprocess_specs, script_engine=engine or StubServices())
    runtime.advance(workflow)
    return workflow


def answer(workflow: BpmnWorkflow, answers: dict) -> runtime.ReadyTask:
    """Complete the one ready task with its answers (by step id first, then by form key)."""
    ready = runtime.ready_user_tasks(workflow)
    assert len(ready) == 1, ready
    task = ready[0]
    data = answers.get(task.name, answers.get(task.form_key))
    assert data is not None, f"no answers for step {task.name} (form {task.form_key})"
    return runtime.complete_user_task(workflow, task.uuid, data)


def run(process_id: str, answers: dict, engine: StubServices | None = None) -> tuple[list[str], dict]:
    workflow = start(process_id, engine)
    steps = []
    while runtime.ready_user_tasks(workflow):
        steps.append(answer(workflow, answers).name)
        assert len(steps) <= 20, "pathway does not end"
    assert workflow.is_completed()
    return steps, runtime.workflow_data(workflow)


# -- answers as the forms give them to the workflow ------------------------------------------

CONSENT = {"consent_given": True, "given_by": "person", "organisation_scope": "any_selected",
           "shared_information": ["needs_summary", "contact_details"], "purpose": ["service_provision"]}
REFUSED = {"consent_given": False}
ADULT = {"case_code": "T-0001", "age": 34, "sex": "female", "languages": ["es"], "status": "migrant",
         "location": "ve/zulia/maracaibo"}
CHILD = {**ADULT, "case_code": "T-0002", "age": 15}
INTAKES = {
    "cp_referral": {"cp_intake": {"separated": False, "caregiver_informed": True, "trafficking_indicators": False,
                                  "needs": ["case_management"]}},
    "gbv_referral": {"gbv_intake": {"safe_contact": "via_caseworker", "trafficking_indicators": False,
                                    "needs": ["health", "psychosocial_support"]}},
    "ct_referral": {"ct_screening": {"recruitment_deception": True, "documents_withheld": None,
                                     "movement_restricted": False, "debt_bondage": None, "threats_violence": None,
                                     "poor_conditions": None, "current_safety": "safe", "needs": ["legal_aid"]}},
}
INTAKE_STEP = {"cp_referral": "cp_intake", "gbv_referral": "gbv_intake", "ct_referral": "ct_screening"}
NORMAL = {"immediate_danger": False, "medical_emergency": False, "caseworker_urgency": "normal"}
URGENT = {**NORMAL, "caseworker_urgency": "urgent"}
DANGER = {**NORMAL, "immediate_danger": True}
TWO = {"chosen_services": ["11", "12"]}
NONE = {"chosen_services": []}
SEND, WITHDRAW = {"confirm_send": True}, {"confirm_send": False}
YES, NO = {"confirm_cross_referral": True}, {"confirm_cross_referral": False}


def answers(process_id: str, *, person=ADULT, safety=NORMAL, services=TWO, review=SEND, consent=CONSENT,
            trafficking=False, **steps) -> dict:
    intake = {key: dict(value) for key, value in INTAKES[process_id].items()}
    if process_id != "ct_referral":
        intake[INTAKE_STEP[process_id]]["trafficking_indicators"] = trafficking
    return {"consent": consent, "person": person, **intake, "safety_assessment": safety,
            "select_services": services, "review": review, **steps}


def after_intake(process_id: str, *offers: str) -> list[str]:
    return ["ask_consent", "person", INTAKE_STEP[process_id], *offers, "safety", "select_services"]


# -- publication -------------------------------------------------------------------------------


@pytest.mark.parametrize("process_id", PATHWAYS)
def test_pathway_parses_and_lints_clean(process_id):
    pathway = parsed(process_id)  # raises PathwayInvalid with every problem otherwise
    assert pathway.process_id == process_id
    # The called processes, and send_to_services' embedded "follow the answers" loop.
    assert sorted(pathway.subprocess_specs) == sorted([*SHARED, "follow_answers"])
    assert {t.lane for t in pathway.user_tasks} == {"caseworker"}
    tasks = {t.name: t for t in pathway.user_tasks}
    assert tasks["select_services"].form_key == "select_services"
    assert tasks["ask_consent"].form_key == "consent" and tasks["safety"].form_key == "safety_assessment"
    offers = {name for name, t in tasks.items() if t.form_key == "cross_referral"}
    assert offers == {"cp_referral": {"offer_ct"}, "gbv_referral": {"offer_cp", "offer_ct"},
                      "ct_referral": {"offer_cp"}}[process_id]
    assert not any(tasks[name].allow_back for name in offers)  # their answer starts a linked referral


def test_pathway_titles():
    assert {pid: parsed(pid).title for pid in PATHWAYS} == {
        "cp_referral": "Child protection referral", "gbv_referral": "Gender-based violence referral",
        "ct_referral": "Counter-trafficking referral"}


def test_step_properties_the_app_reads():
    selection = parsed("cp_referral").subprocess_specs["service_selection"].task_specs["select_services"]
    assert selection.extensions["properties"] == {"formKey": "select_services", "panel": "service_matches"}
    offer = parsed("gbv_referral").spec.task_specs["offer_cp"]
    assert offer.extensions["properties"]["instructions"].startswith("The person is under 18.")


@pytest.mark.parametrize("name", sorted(p.name for p in [*WORKFLOWS.glob("*_referral.bpmn"),
                                                          *(WORKFLOWS / "shared").glob("*.bpmn")]
                                        if not p.name.startswith("demo_")))
def test_every_element_is_drawn(name):
    """bpmn.io shows only what has diagram interchange: every node and flow has a shape or edge."""
    path = WORKFLOWS / name if (WORKFLOWS / name).exists() else WORKFLOWS / "shared" / name
    root = etree.parse(str(path)).getroot()
    bpmn = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
    process = root.find(f"{bpmn}process")
    elements = {e.get("id") for e in process if e.get("id") and e.tag not in (f"{bpmn}laneSet", f"{bpmn}documentation")}
    drawn = {e.get("bpmnElement") for e in root.iter("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape",
                                                     "{http://www.omg.org/spec/BPMN/20100524/DI}BPMNEdge")}
    assert elements and elements <= drawn, sorted(elements - drawn)


# -- the shared call activities: data in and out ----------------------------------------------


def test_call_activity_passes_the_callers_data_in_and_its_results_out():
    engine = StubServices(gaps=["legal_aid"])
    workflow = start("cp_referral", engine)
    consent_task = workflow.get_tasks(spec_name="ask_consent")[0]
    assert consent_task.workflow is not workflow  # it runs in the called process ...
    assert consent_task.data["sector"] == "CP"  # ... and sees what the caller set before the call

    answer(workflow, {"consent": CONSENT})
    # Back in the calling process: the consent answers came out of the call activity.
    person = workflow.get_tasks(spec_name="person")[0]
    assert person.workflow is workflow and person.data["consent_given"] is True
    assert person.data["organisation_scope"] == "any_selected"

    answer(workflow, {"person": ADULT})
    answer(workflow, INTAKES["cp_referral"])
    answer(workflow, {"safety": URGENT})
    # The safety assessment's decisions (two DMN tables inside the called process) came out,
    # and the next called process sees them together with the intake's answers.
    selection = workflow.get_tasks(spec_name="select_services")[0]
    assert selection.data["urgency"] == "urgent" and selection.data["response_hours"] == 72
    assert selection.data["needs"] == ["case_management"] and selection.data["age"] == 34

    answer(workflow, {"select_services": TWO})
    operation, params, seen = engine.calls[0]
    assert (operation, params) == ("record_gaps", {})
    assert seen["sector"] == "CP" and seen["chosen_services"] == ["11", "12"] and seen["location"]
    # The service task's result came out of the called process into the caller's gateway data.
    review = workflow.get_tasks(spec_name="review")[0]
    assert review.data["gaps"] == ["legal_aid"]

    answer(workflow, {"review": SEND})
    assert engine.operations() == ["record_gaps", "send_referral"]
    assert workflow.is_completed()
    assert workflow.data["sending"] == {"sent": 2, "blocked": 0}
    assert workflow.data["outcome"] == "sent" and workflow.data["consent_given"] is True


@pytest.mark.parametrize("process_id", PATHWAYS)
def test_consent_refused_ends_at_once_and_nothing_is_sent(process_id):
    engine = StubServices()
    steps, data = run(process_id, {"consent": REFUSED}, engine)
    assert steps == ["ask_consent"]
    assert data["outcome"] == "consent_refused" and data["sector"] == {"cp_referral": "CP", "gbv_referral": "GBV",
                                                                       "ct_referral": "CT"}[process_id]
    assert engine.calls == []
    assert "urgency" not in data and "chosen_services" not in data


# -- every branch of every pathway ------------------------------------------------------------


@pytest.mark.parametrize("process_id", PATHWAYS)
def test_adult_normal_sent(process_id):
    engine = StubServices()
    steps, data = run(process_id, answers(process_id), engine)
    assert steps == [*after_intake(process_id), "review"]
    assert data["outcome"] == "sent" and data["urgency"] == "normal" and data["response_hours"] == 336
    assert data["sending"] == {"sent": 2, "blocked": 0} and data["gaps"] == []
    assert engine.operations() == ["record_gaps", "send_referral"]
    assert "linked_cp" not in data and "linked_ct" not in data


@pytest.mark.parametrize("process_id", PATHWAYS)
def test_emergency_when_in_immediate_danger_even_if_assessed_normal(process_id):
    steps, data = run(process_id, answers(process_id, safety=DANGER))
    assert data["urgency"] == "emergency" and data["response_hours"] == 24 and data["outcome"] == "sent"


@pytest.mark.parametrize("process_id", PATHWAYS)
def test_no_matching_service_ends_without_review_and_sends_nothing(process_id):
    engine = StubServices(gaps=["safe_shelter"])
    steps, data = run(process_id, answers(process_id, services=NONE, safety=URGENT), engine)
    assert steps == after_intake(process_id)
    assert data["outcome"] == "no_service" and data["gaps"] == ["safe_shelter"] and data["response_hours"] == 72
    assert engine.operations() == ["record_gaps"]


@pytest.mark.parametrize("process_id", PATHWAYS)
def test_withdrawn_at_review_sends_nothing(process_id):
    engine = StubServices()
    steps, data = run(process_id, answers(process_id, review=WITHDRAW), engine)
    assert steps == [*after_intake(process_id), "review"]
    assert data["outcome"] == "withdrawn" and "sending" not in data
    assert engine.operations() == ["record_gaps"]


@pytest.mark.parametrize(("process_id", "offer", "linked", "pathway"), [
    ("gbv_referral", "offer_cp", "linked_cp", "cp_referral"),
    ("ct_referral", "offer_cp", "linked_cp", "cp_referral"),
])
@pytest.mark.parametrize("confirmed", [True, False])
def test_a_child_is_offered_a_linked_child_protection_referral(process_id, offer, linked, pathway, confirmed):
    engine = StubServices()
    steps, data = run(process_id, answers(process_id, person=CHILD, **{offer: YES if confirmed else NO}), engine)
    assert steps == [*after_intake(process_id, offer), "review"]
    assert data["outcome"] == "sent"
    if confirmed:
        assert data[linked] == f"R-LINK-{pathway}"
        assert engine.calls[0][:2] == ("start_linked_referral", {"pathway": pathway})
    else:
        assert linked not in data and "start_linked_referral" not in engine.operations()


def test_a_child_in_the_child_protection_pathway_is_not_offered_it_again():
    steps, data = run("cp_referral", answers("cp_referral", person=CHILD))
    assert steps == [*after_intake("cp_referral"), "review"]


@pytest.mark.parametrize("process_id", ["cp_referral", "gbv_referral"])
@pytest.mark.parametrize("confirmed", [True, False])
def test_signs_of_trafficking_offer_a_linked_counter_trafficking_referral(process_id, confirmed):
    engine = StubServices()
    steps, data = run(process_id, answers(process_id, trafficking=True, offer_ct=YES if confirmed else NO), engine)
    assert steps == [*after_intake(process_id, "offer_ct"), "review"]
    assert ("linked_ct" in data) is confirmed and "linked_cp" not in data
    assert engine.operations().count("start_linked_referral") == int(confirmed)


def test_a_trafficked_child_survivor_can_get_both_linked_referrals():
    engine = StubServices()
    steps, data = run("gbv_referral", answers("gbv_referral", person=CHILD, trafficking=True,
                                              offer_cp=YES, offer_ct=YES), engine)
    assert steps == [*after_intake("gbv_referral", "offer_cp", "offer_ct"), "review"]
    assert data["linked_cp"] == "R-LINK-cp_referral" and data["linked_ct"] == "R-LINK-ct_referral"
    assert [c[1] for c in engine.calls if c[0] == "start_linked_referral"] == [
        {"pathway": "cp_referral"}, {"pathway": "ct_referral"}]


@pytest.mark.parametrize("process_id", ["gbv_referral", "ct_referral"])
def test_going_back_cannot_start_a_linked_referral_twice(process_id):
    engine = StubServices()
    workflow = start(process_id, engine)
    script = answers(process_id, person=CHILD, offer_cp=YES)
    for _ in range(4):  # consent, person, intake, offer_cp
        answer(workflow, script)
    assert engine.operations() == ["start_linked_referral"]
    safety = runtime.ready_user_tasks(workflow)[0]
    assert safety.name == "safety"
    assert runtime.previous_user_task(workflow, safety.uuid) is None  # the offer cannot be reopened
    with pytest.raises(runtime.CannotGoBack):
        runtime.go_back(workflow, safety.uuid)
    # Further on, going back still works where nothing was started.
    answer(workflow, script)
    selection = runtime.ready_user_tasks(workflow)[0]
    assert runtime.go_back(workflow, selection.uuid).name == "safety"
    assert engine.operations() == ["start_linked_referral"]


# -- the decisions ------------------------------------------------------------------------------


@cache
def _safety_only() -> ParsedPathway:
    files = discover_pathways(WORKFLOWS)["cp_referral"][1]
    return parse_pathway(files, "shared/safety_assessment.bpmn", set(_form_keys()), OPERATIONS)


@pytest.mark.parametrize("danger", [True, False])
@pytest.mark.parametrize("medical", [True, False])
@pytest.mark.parametrize("assessed", ["emergency", "urgent", "normal"])
def test_urgency_and_response_deadline(danger, medical, assessed):
    pathway = _safety_only()
    workflow = BpmnWorkflow(pathway.spec, pathway.subprocess_specs, script_engine=StubServices())
    runtime.advance(workflow)
    answer(workflow, {"safety": {"immediate_danger": danger, "medical_emergency": medical,
                                 "caseworker_urgency": assessed}})
    expected = "emergency" if danger or medical else assessed
    assert workflow.is_completed()
    assert workflow.data["urgency"] == expected
    assert workflow.data["response_hours"] == {"emergency": 24, "urgent": 72, "normal": 336}[expected]


@pytest.mark.parametrize("safety", [
    {"immediate_danger": False, "medical_emergency": False, "caseworker_urgency": "unheard of"},
    {"immediate_danger": None, "medical_emergency": None, "caseworker_urgency": None},
])
def test_answers_no_rule_covers_fall_back_to_an_emergency(safety):
    # The catch-all rules of urgency_level and response_deadline: an answer the form cannot give
    # (a missing or unknown one) is treated as an emergency rather than deciding nothing.
    pathway = _safety_only()
    workflow = BpmnWorkflow(pathway.spec, pathway.subprocess_specs, script_engine=StubServices())
    runtime.advance(workflow)
    answer(workflow, {"safety": safety})
    assert workflow.is_completed()
    assert (workflow.data["urgency"], workflow.data["response_hours"]) == ("emergency", 24)


@pytest.mark.parametrize(("yes", "count", "result"), [
    (0, 0, "unlikely"), (1, 1, "possible"), (2, 2, "possible"), (3, 3, "likely"), (6, 6, "likely"),
])
def test_trafficking_screening_score(yes, count, result):
    indicators = ["recruitment_deception", "documents_withheld", "movement_restricted", "debt_bondage",
                  "threats_violence", "poor_conditions"]
    # Unanswered questions (None) and "no" answers both count as no.
    screening = {name: (True if i < yes else (None if i % 2 else False)) for i, name in enumerate(indicators)}
    screening |= {"current_safety": "unknown", "needs": ["legal_aid"]}
    steps, data = run("ct_referral", answers("ct_referral", ct_screening=screening))
    assert data["ct_indicator_count"] == count and data["screening_result"] == result
