"""Service tasks: dispatched to registered handlers, checked at publication."""

from __future__ import annotations

import pytest

from app.workflow import runtime, service_tasks
from app.workflow.specs import PathwayInvalid, parse_pathway, serialize_specs

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="svc" name="Service" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="call" name="Call">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="answer">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="who" type="str" value="{param}" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call" />
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"""


def _files(operator="echo", param="'world'"):
    return {"svc.bpmn": BPMN.format(operator=operator, param=param)}


@pytest.fixture
def echo():
    calls = []

    def handler(call):
        calls.append(call)
        return {"hello": call.params["who"], "instance": call.instance_id, "user": call.user_id}

    service_tasks.register("echo", handler)
    yield calls
    service_tasks._handlers.pop("echo", None)


def test_handler_gets_instance_user_and_evaluated_parameters(echo):
    spec_json = serialize_specs(parse_pathway(_files(), "svc.bpmn", operations={"echo"}))
    with service_tasks.running(41, 7):
        workflow = runtime.new_workflow(spec_json)
    assert runtime.is_completed(workflow)
    assert runtime.workflow_data(workflow)["answer"] == {"hello": "world", "instance": 41, "user": 7}
    assert echo[0].operation == "echo"


def test_unknown_operator_is_refused_at_publication():
    with pytest.raises(PathwayInvalid, match="operator 'launch_missiles' is unknown"):
        parse_pathway(_files(operator="launch_missiles"), "svc.bpmn", operations={"echo"})


def test_unsafe_parameter_is_refused_at_publication():
    with pytest.raises(PathwayInvalid, match="parameter 'who'"):
        parse_pathway(_files(param="__import__('os').getcwd()"), "svc.bpmn", operations={"echo"})


def test_service_task_outside_an_engine_run_fails_cleanly(echo):
    spec_json = serialize_specs(parse_pathway(_files(), "svc.bpmn", operations={"echo"}))
    with pytest.raises(Exception, match="outside an engine run"):
        runtime.new_workflow(spec_json)
    assert echo == []
