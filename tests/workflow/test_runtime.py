"""The runtime: go back where the pathway allows it, store and reload, timers."""

from __future__ import annotations

import pytest

from app.workflow import runtime
from app.workflow.specs import parse_pathway, serialize_specs

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="steps" name="Steps" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    {tasks}
    <bpmn:endEvent id="e"><bpmn:incoming>f{n}</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
TASK = """<bpmn:userTask id="{id}" name="Step {id}"><bpmn:extensionElements><spiffworkflow:properties>
  <spiffworkflow:property name="formKey" value="form_{id}" />{extra}
  </spiffworkflow:properties></bpmn:extensionElements>
  <bpmn:incoming>f{i}</bpmn:incoming><bpmn:outgoing>f{j}</bpmn:outgoing></bpmn:userTask>
  <bpmn:sequenceFlow id="f{i}" sourceRef="{src}" targetRef="{id}" />"""
TIMER = """<bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f{i}</bpmn:incoming>
  <bpmn:outgoing>f{j}</bpmn:outgoing><bpmn:timerEventDefinition>
  <bpmn:timeDuration>"PT48H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
  <bpmn:sequenceFlow id="f{i}" sourceRef="{src}" targetRef="wait" />"""


def _spec_json(*steps: tuple[str, str]) -> str:
    parts, src = [], "s"
    for i, (task_id, extra) in enumerate(steps):
        template = TIMER if task_id == "wait" else TASK
        parts.append(template.format(id=task_id, extra=extra, i=i, j=i + 1, src=src))
        src = task_id
    xml = BPMN.format(tasks="\n".join(parts), n=len(steps)).replace(
        f'<bpmn:incoming>f{len(steps)}</bpmn:incoming></bpmn:endEvent>',
        f'<bpmn:incoming>f{len(steps)}</bpmn:incoming></bpmn:endEvent>'
        f'<bpmn:sequenceFlow id="f{len(steps)}" sourceRef="{src}" targetRef="e" />')
    return serialize_specs(parse_pathway({"steps.bpmn": xml}, "steps.bpmn"))


NO_BACK = '\n  <spiffworkflow:property name="allowBack" value="false" />'


def _complete(workflow, data=None):
    task = runtime.ready_user_tasks(workflow)[0]
    runtime.complete_user_task(workflow, task.uuid, data or {})
    return task


def test_go_back_returns_to_the_previous_step_with_its_data_reset():
    wf = runtime.new_workflow(_spec_json(("a", ""), ("b", ""), ("c", "")))
    _complete(wf, {"x": 1})
    _complete(wf, {"y": 2})
    current = runtime.ready_user_tasks(wf)[0]
    assert current.name == "c"
    previous = runtime.go_back(wf, current.uuid)
    assert previous.name == "b"
    assert [t.name for t in runtime.ready_user_tasks(wf)] == ["b"]


def test_no_going_back_from_or_to_a_step_that_forbids_it():
    wf = runtime.new_workflow(_spec_json(("a", ""), ("b", NO_BACK), ("c", "")))
    first = runtime.ready_user_tasks(wf)[0]
    assert runtime.previous_user_task(wf, first.uuid) is None  # nothing before the first step
    _complete(wf)
    on_b = runtime.ready_user_tasks(wf)[0]
    with pytest.raises(runtime.CannotGoBack):
        runtime.go_back(wf, on_b.uuid)  # b itself forbids it
    _complete(wf)
    on_c = runtime.ready_user_tasks(wf)[0]
    assert runtime.previous_user_task(wf, on_c.uuid) is None  # b may not be reopened


def test_dump_and_load_round_trip_keeps_the_place():
    spec_json = _spec_json(("a", ""), ("b", ""))
    wf = runtime.new_workflow(spec_json)
    _complete(wf, {"answer": "kept"})
    again = runtime.load_workflow(spec_json, runtime.dump_workflow(wf))
    task = runtime.ready_user_tasks(again)[0]
    assert task.name == "b" and runtime.task_data(again, task.uuid)["answer"] == "kept"


def test_a_task_that_is_no_longer_ready_is_refused():
    wf = runtime.new_workflow(_spec_json(("a", ""), ("b", "")))
    done = _complete(wf)
    with pytest.raises(runtime.TaskNotReady):
        runtime.complete_user_task(wf, done.uuid, {})


def test_waiting_timer_reports_when_it_is_due():
    from datetime import UTC, datetime, timedelta

    wf = runtime.new_workflow(_spec_json(("a", ""), ("wait", ""), ("b", "")))
    assert runtime.next_timer_due(wf) is None
    _complete(wf)
    due = runtime.next_timer_due(wf)
    assert due is not None
    assert abs(due - (datetime.now(UTC) + timedelta(hours=48))) < timedelta(minutes=1)
    assert runtime.ready_user_tasks(wf) == []
