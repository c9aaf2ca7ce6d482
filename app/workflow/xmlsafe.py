"""Read uploaded BPMN and DMN files without trusting them.

Every file goes through :func:`read_xml` before any XML parser — ours or SpiffWorkflow's —
sees it, in this order:

1. **size**: more than ``max_bytes`` is refused before anything else is done with it;
2. **encoding**: the bytes must be UTF-8 (a UTF-8 byte order mark is allowed); a file that
   declares another encoding is refused, so every tool reads the same text we checked;
3. **no document type**: BPMN and DMN never need a ``<!DOCTYPE ...>``, and a DTD is what
   entity attacks need (billion laughs, quadratic blow-up, external entities reading local
   files or fetching URLs, parameter entities). The decoded text is scanned and any
   ``<!DOCTYPE``/``<!ENTITY``/``<!ELEMENT``/``<!ATTLIST``/``<!NOTATION`` refused; nothing
   is ever expanded or fetched;
4. **hardened parser**: the text is then parsed by lxml with entities not resolved, no
   network, no DTD loading or validation and no "huge tree" (libxml2 keeps its depth and
   size limits). After parsing, a document that still carries a DTD is refused (a second,
   independent check), as is any XInclude element (lxml never processes XInclude unless
   asked, and we never ask, but such a file has no business being published).

SpiffWorkflow then only ever receives the parsed tree (``add_bpmn_xml``/``add_dmn_xml``),
never bytes or a path: its own ``add_*_str``/``add_*_file`` use lxml's default parser,
which resolves entities.

The scan in step 3 errs on the side of refusing: the text ``<!DOCTYPE`` inside a comment is
refused too. Escaped text (``&lt;!DOCTYPE``) is not affected.
"""

from __future__ import annotations

import re

from lxml import etree

#: Default largest file accepted, in bytes (1 MiB). The biggest pathway file in workflows/
#: is about 25 KB.
DEFAULT_MAX_BYTES = 1024 * 1024

XINCLUDE_NS = "http://www.w3.org/2001/XInclude"

_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)\b", re.IGNORECASE)
_ENCODING = re.compile(r"""\A<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
_UTF8_NAMES = {"utf-8", "utf8", "us-ascii", "ascii"}
_OTHER_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
               (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16"))


class UnsafeXml(ValueError):
    """A file refused before (or instead of) parsing; ``str()`` is the message to show."""


def decode(data: str | bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of an uploaded file, after the size, encoding and document-type checks.

    Raises :class:`UnsafeXml` with a plain-English message otherwise.
    """
    if isinstance(data, str):
        size = len(data.encode("utf-8", "surrogatepass"))
    elif isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
        size = len(data)
    else:
        raise UnsafeXml(f"the file content must be text, not {type(data).__name__}")
    if size > max_bytes:
        raise UnsafeXml(f"the file is too large: {size:,} bytes, and the limit is {max_bytes:,} bytes; "
                        "move parts of the pathway into called processes")
    if isinstance(data, bytes):
        for bom, encoding in _OTHER_BOMS:
            if data.startswith(bom):
                raise UnsafeXml(f"the file is saved as {encoding}; save it as UTF-8")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise UnsafeXml(f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                            "save it as UTF-8") from None
    else:
        text = data.removeprefix("\ufeff")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            line = text[: exc.start].count("\n") + 1
            raise UnsafeXml(f"the file contains characters that are not valid text (line {line}); "
                            "save it as UTF-8") from None
    declared = _ENCODING.match(text)
    if declared and declared[1].strip().lower() not in _UTF8_NAMES:
        raise UnsafeXml(f"the file declares the encoding '{declared[1]}'; save it as UTF-8 "
                        'with <?xml version="1.0" encoding="UTF-8"?>')
    if found := _DECLARATION.search(text):
        raise UnsafeXml(_dtd_message(found[0], text[: found.start()].count("\n") + 1))
    return text


def _dtd_message(what: str, line: int | None) -> str:
    where = f" ({what.strip()} on line {line})" if line else ""
    return (f"the file contains a document type or entity declaration{where}. BPMN and DMN files "
            "never need one, and it can be used to read files from the server or to exhaust it, "
            "so the file is refused: remove the <!DOCTYPE ...> part and upload it again")


def hardened_parser() -> etree.XMLParser:
    """A new lxml parser that never expands entities, loads a DTD or uses the network.

    (A parser must not be shared between threads, so every parse gets its own.)
    """
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_pis=False, encoding="utf-8")


def parse(text: str) -> etree._Element:
    """Parse already :func:`decode`-d text with :func:`hardened_parser`.

    Raises :class:`UnsafeXml` for a DTD or XInclude found after parsing and lxml's
    ``XMLSyntaxError`` for malformed XML.
    """
    # Bytes plus an explicit parser encoding: lxml refuses a str with an encoding declaration,
    # and the declaration (checked in decode) cannot make it read the text differently.
    root = etree.fromstring(text.encode("utf-8"), hardened_parser())
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXml(_dtd_message("<!DOCTYPE", None))
    if (xinclude := next(root.iter(f"{{{XINCLUDE_NS}}}*"), None)) is not None:
        raise UnsafeXml(f"the file uses XInclude (line {xinclude.sourceline}), which is not allowed: "
                        "put everything the pathway needs in its own files")
    return root


def read_xml(data: str | bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, etree._Element]:
    """``(text, root)`` for an uploaded file: :func:`decode` then :func:`parse`."""
    text = decode(data, max_bytes)
    return text, parse(text)


def definitions(name: str, root: etree._Element) -> dict[str, str]:
    """``{id: name}`` of what file ``name`` defines for others to call: the processes of a
    ``.bpmn`` file, the decisions of a ``.dmn`` file (the name falls back to the id)."""
    if name.endswith(".dmn"):
        found = root.iterfind("{*}decision")
    elif name.endswith(".bpmn"):
        found = root.iterfind("{http://www.omg.org/spec/BPMN/20100524/MODEL}process")
    else:
        return {}
    return {element.get("id"): element.get("name") or element.get("id") for element in found}


def element_names(root: etree._Element) -> dict[str, str]:
    """``{id: name}`` for the elements of a BPMN or DMN document that have a name to show.

    BPMN elements use their ``name``, a sequence flow without one ``from <source> to <target>``;
    DMN decision tables the decision's name, rules ``rule N`` (with their description) and
    rule entries ``rule N, <input or output label>``.
    """
    names: dict[str, str] = {}
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("id") and (element.get("name") or element.get("label")):
            names[element.get("id")] = (element.get("name") or element.get("label")).strip()
    for flow in root.iter("{*}sequenceFlow"):
        if flow.get("id") and flow.get("id") not in names:
            source, target = flow.get("sourceRef", "?"), flow.get("targetRef", "?")
            names[flow.get("id")] = f"from {names.get(source, source)} to {names.get(target, target)}"
    for table in root.iter("{*}decisionTable"):
        label = table.get("label") or table.getparent().get("name")
        if table.get("id") and label:
            names[table.get("id")] = label.strip()
        columns = {kind: [c.get("label") or c.get("name") or c.get("id") or "?" for c in table.iterfind("{*}" + kind)]
                   for kind in ("input", "output")}
        for number, rule in enumerate(table.iterfind("{*}rule"), 1):
            description = " ".join((rule.findtext("{*}description") or "").split())
            rule_name = f"rule {number}" + (f" ({description})" if description else "")
            if rule.get("id"):
                names[rule.get("id")] = rule_name
            for kind in ("input", "output"):
                for column, entry in zip(columns[kind], rule.iterfind("{*}" + kind + "Entry"), strict=False):
                    if entry.get("id"):
                        names[entry.get("id")] = f"{rule_name}, {column}"
    return names
