"""Babel extractor for BPMN files: pathway and step titles shown to users are translatable.

Extracts the ``name`` of each process, user task and end event, and the ``instructions``
property of user tasks. Mapped in babel.cfg as ``[bpmn: workflows/**.bpmn]``.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
_NAMED = {f"{BPMN}process": "pathway title", f"{BPMN}userTask": "step title",
          f"{BPMN}endEvent": "outcome"}


def extract_bpmn(fileobj, keywords, comment_tags, options) -> Iterator[tuple[int, str, str, list[str]]]:
    """Yield (line, funcname, message, comments) for every user-visible name in a BPMN file."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.parse(fileobj, parser).getroot()
    except etree.XMLSyntaxError:
        return
    for element in root.iter():
        kind = _NAMED.get(element.tag)
        if kind and element.get("name"):
            yield element.sourceline or 0, "_", element.get("name"), [f"{kind}: {element.get('id')}"]
        if element.tag == f"{SPIFF}property" and element.get("name") == "instructions" and element.get("value"):
            yield element.sourceline or 0, "_", element.get("value"), ["step instructions"]
