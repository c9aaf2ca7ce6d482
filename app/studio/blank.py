"""New pathway files: a blank diagram, a copy under a new key, and what a set of files defines."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from lxml import etree

from app.workflow import xmlsafe

_BLANK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
                  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
                  xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="{key}_definitions" targetNamespace="http://pathways.example/bpmn">
  <bpmn:collaboration id="{key}_collaboration">
    <bpmn:participant id="{key}_participant" name={title} processRef="{key}" />
  </bpmn:collaboration>
  <bpmn:process id="{key}" name={title} isExecutable="true">
    <bpmn:laneSet id="{key}_lanes">
      <bpmn:lane id="{key}_lane_caseworker" name="caseworker">
        <bpmn:flowNodeRef>{key}_start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>{key}_end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="{key}_start" name="Start"><bpmn:outgoing>{key}_flow</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="{key}_flow" sourceRef="{key}_start" targetRef="{key}_end" />
    <bpmn:endEvent id="{key}_end" name="End"><bpmn:incoming>{key}_flow</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="{key}_diagram">
    <bpmndi:BPMNPlane id="{key}_plane" bpmnElement="{key}_collaboration">
      <bpmndi:BPMNShape id="{key}_participant_di" bpmnElement="{key}_participant" isHorizontal="true">
        <dc:Bounds x="120" y="80" width="600" height="200" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="{key}_lane_caseworker_di" bpmnElement="{key}_lane_caseworker" isHorizontal="true">
        <dc:Bounds x="150" y="80" width="570" height="200" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="{key}_start_di" bpmnElement="{key}_start">
        <dc:Bounds x="212" y="162" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="{key}_end_di" bpmnElement="{key}_end">
        <dc:Bounds x="612" y="162" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="{key}_flow_di" bpmnElement="{key}_flow">
        <di:waypoint x="248" y="180" />
        <di:waypoint x="612" y="180" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def diagram(key: str, title: str) -> str:
    """A valid, empty pathway: one caseworker lane, start, end."""
    return _BLANK.replace("{key}", key).replace("{title}", quoteattr(title))


def parse_stored(text: str | bytes):
    """Parse a stored file with the upload checks' hardened parser (no DTD, no entities).

    Raises ``lxml.etree.XMLSyntaxError`` or :class:`xmlsafe.UnsafeXml` (a ``ValueError``).
    """
    return xmlsafe.parse(text.decode("utf-8") if isinstance(text, bytes) else text)


def renamed(text: str, old_key: str, new_key: str, title: str) -> str:
    """``text`` (a stored, checked main file) with its main process renamed to ``new_key``:
    the process id and name, and every reference to the id (participant, diagram plane)."""
    root = parse_stored(text)
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.get("id") == old_key and etree.QName(element).localname == "process":
            element.set("id", new_key)
            element.set("name", title)
        for attr in ("processRef", "bpmnElement"):
            if element.get(attr) == old_key:
                element.set(attr, new_key)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def defined_ids(files: dict[str, str]) -> dict[str, dict[str, str]]:
    """{"processes": {id: name}, "decisions": {id: name}} defined in ``files`` (unreadable
    files are skipped: the checks report them)."""
    found: dict[str, dict[str, str]] = {"processes": {}, "decisions": {}}
    for name, text in files.items():
        try:
            root = parse_stored(text)
        except (etree.XMLSyntaxError, ValueError):
            continue
        found["decisions" if name.endswith(".dmn") else "processes"].update(xmlsafe.definitions(name, root))
    return found
