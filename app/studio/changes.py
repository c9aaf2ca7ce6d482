"""A readable change list between two sets of pathway files: steps added, removed, changed.

Compares what the pathway *does* — each element's type, name, form, lane, operation,
timer, condition, called process or decision, scripts, and each DMN rule — and ignores
where shapes sit on the diagram. Reads stored files, which passed the checks when saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from app.studio.blank import parse_stored

_BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
#: Elements that are containers or plumbing, not steps.
_SKIP = {"process", "laneSet", "lane", "definitions", "collaboration", "participant", "ioSpecification",
         "dataInput", "dataOutput", "inputSet", "outputSet", "property", "extensionElements"}


@dataclass
class Change:
    kind: str  # added | removed | changed
    file: str
    element_id: str
    element_type: str
    name: str
    details: list[str] = field(default_factory=list)


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _text(element, path: str) -> str | None:
    found = element.find(path, {"b": _BPMN, "s": _SPIFF})
    return (found.text or "").strip() if found is not None else None


def _describe(element, lanes: dict[str, str]) -> dict[str, str]:
    """What matters about a BPMN element, as label -> value."""
    facts: dict[str, str] = {"name": element.get("name") or ""}
    ns = {"b": _BPMN, "s": _SPIFF}
    for prop in element.iterfind("b:extensionElements/s:properties/s:property", ns):
        facts[prop.get("name") or "?"] = prop.get("value") or ""
    operator = element.find("b:extensionElements/s:serviceTaskOperator", ns)
    if operator is not None:
        facts["operation"] = operator.get("id") or ""
        for param in operator.iterfind("s:parameters/s:parameter", ns):
            facts[f"parameter {param.get('id')}"] = param.get("value") or ""
    for label, path in (("decision", "b:extensionElements/s:calledDecisionId"),
                        ("script", "b:script"), ("pre-script", "b:extensionElements/s:preScript"),
                        ("post-script", "b:extensionElements/s:postScript"),
                        ("condition", "b:conditionExpression"),
                        ("timer", "b:timerEventDefinition/b:timeDuration"),
                        ("timer date", "b:timerEventDefinition/b:timeDate"),
                        ("timer cycle", "b:timerEventDefinition/b:timeCycle"),
                        ("loop condition", "b:standardLoopCharacteristics/b:loopCondition")):
        value = _text(element, path)
        if value is not None:
            facts[label] = value
    for attr in ("calledElement", "default", "sourceRef", "targetRef", "attachedToRef", "messageRef"):
        if element.get(attr):
            facts[attr] = element.get(attr)
    if element.get("id") in lanes:
        facts["role"] = lanes[element.get("id")]
    return facts


def _elements(files: dict[str, str]) -> dict[tuple[str, str], tuple[str, dict[str, str]]]:
    """{(file, element id): (type, facts)} for every step, flow and DMN rule in ``files``."""
    found = {}
    for name, text in sorted(files.items()):
        try:
            root = parse_stored(text)
        except (etree.XMLSyntaxError, ValueError):
            continue
        if name.endswith(".dmn"):
            for rule in root.iter("{*}rule"):
                cells = [(c.findtext("{*}text") or "").strip() for c in rule if _local(c.tag).endswith("Entry")]
                found[(name, rule.get("id") or "")] = ("rule", {"entries": " | ".join(cells)})
            continue
        lanes = {ref.text.strip(): lane.get("name") or lane.get("id")
                 for lane in root.iter(f"{{{_BPMN}}}lane") for ref in lane.iterfind(f"{{{_BPMN}}}flowNodeRef")
                 if ref.text}
        for process in root.iter(f"{{{_BPMN}}}process", f"{{{_BPMN}}}subProcess"):
            for element in process:
                kind = _local(element.tag)
                if kind in _SKIP or not element.get("id"):
                    continue
                found[(name, element.get("id"))] = (kind, _describe(element, lanes))
    return found


def describe_changes(old: dict[str, str] | None, new: dict[str, str]) -> list[Change]:
    """The changes from ``old`` files (None: a first version) to ``new``, in file order."""
    before, after = _elements(old or {}), _elements(new)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        file, element_id = key
        if key not in before:
            kind, facts = after[key]
            changes.append(Change("added", file, element_id, kind, facts.get("name", "")))
        elif key not in after:
            kind, facts = before[key]
            changes.append(Change("removed", file, element_id, kind, facts.get("name", "")))
        elif before[key] != after[key]:
            kind, facts = after[key]
            old_facts = before[key][1]
            details = [f"{label}: {old_facts.get(label, '—') or '—'} → {facts.get(label, '—') or '—'}"
                       for label in sorted(old_facts.keys() | facts.keys())
                       if old_facts.get(label) != facts.get(label)]
            if before[key][0] != kind:
                details.insert(0, f"type: {before[key][0]} → {kind}")
            changes.append(Change("changed", file, element_id, kind, facts.get("name", ""), details))
    return changes
