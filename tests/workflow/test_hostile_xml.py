"""Hostile XML is refused with a clear message, and nothing in it is ever expanded or fetched.

Each attack is tried through check_pathway (what upload, the studio and the command line use);
the two layers of app/workflow/xmlsafe.py — the scan of the decoded text and the hardened
parser — are also tried one by one, so that switching either off fails a test. Nothing here
depends on the network: "remote" URLs point at a small HTTP server on 127.0.0.1 that records
every request it gets.
"""

from __future__ import annotations

import re
import resource
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from app.workflow import xmlsafe
from app.workflow.checks import check_pathway
from app.workflow.specs import discover_pathways

CHECKS = Path(__file__).parent / "bpmn" / "checks"
ROOT = Path(__file__).resolve().parents[2]
GOOD = ("pathway.bpmn", "shared/consent_steps.bpmn", "shared/band.dmn")
DTD_REFUSED = "the file contains a document type or entity declaration"


def good_files() -> dict[str, str]:
    return {name: (CHECKS / name).read_text(encoding="utf-8") for name in GOOD}


def hostile(doctype: str, reference: str = "", *, xmlns: str = "") -> str:
    """The good main file with ``doctype`` before its root and ``reference`` in the process's
    documentation (where an expanded entity would end up)."""
    xml = good_files()["pathway.bpmn"]
    xml = xml.replace("<bpmn:definitions", doctype + "\n<bpmn:definitions" + (f" {xmlns}" if xmlns else ""), 1)
    return xml.replace('isExecutable="true">', f'isExecutable="true">\n<bpmn:documentation>{reference}'
                                               "</bpmn:documentation>", 1)


def check(main: str | bytes, **options):
    return check_pathway({**good_files(), "pathway.bpmn": main}, "pathway.bpmn", **options)


def everything_said(result) -> str:
    """All the text a caller could show or store: problems, files, and the parsed pathway."""
    return "\n".join([*(f"{p} {p.element_name}" for p in result.problems), *result.files.values(),
                      repr(result.parsed.__dict__) if result.parsed else ""])


def refused(result, message: str = DTD_REFUSED) -> str:
    assert not result.ok and result.parsed is None
    texts = [p.message for p in result.problems if p.file == "pathway.bpmn"]
    assert texts and texts[0].startswith(message), [str(p) for p in result.problems]
    return texts[0]


# -- entity expansion -------------------------------------------------------------------------

BILLION_LAUGHS = "<!DOCTYPE lolz [\n  <!ENTITY lol \"lol\">\n" + "".join(
    f"  <!ENTITY lol{i} \"{('&lol' + (str(i - 1) if i > 1 else '') + ';') * 10}\">\n" for i in range(1, 10)) + "]>"


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def test_billion_laughs_is_refused_at_once_and_never_expanded():
    assert BILLION_LAUGHS.count("<!ENTITY") == 10  # the classic: 10**9 "lol"s, about 3 GB expanded
    xml = hostile(BILLION_LAUGHS, "&lol9;")
    rss_before = max_rss_mib()
    tracemalloc.start()
    started = time.perf_counter()
    result = check(xml)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    message = refused(result)
    assert elapsed < 1.0
    assert peak < 20 * 1024 * 1024 and max_rss_mib() - rss_before < 50  # Python's and the process's memory
    assert "(<!DOCTYPE on line 3)" in message and "remove the <!DOCTYPE ...> part" in message
    assert "lollollol" not in everything_said(result).replace(xml, "")


def test_quadratic_blowup_is_refused():
    big = "A" * 50_000
    xml = hostile(f'<!DOCTYPE kaboom [<!ENTITY a "{big}">]>', "&a;" * 20_000)  # 130 KB -> 1 GB expanded
    assert len(xml) < xmlsafe.DEFAULT_MAX_BYTES
    started = time.perf_counter()
    result = check(xml)
    assert time.perf_counter() - started < 1.0
    refused(result)
    assert big * 2 not in everything_said(result)


def test_any_doctype_is_refused_even_a_harmless_one():
    refused(check(hostile("<!DOCTYPE bpmn:definitions>")))
    refused(check(hostile('<!DOCTYPE x [<!ELEMENT x ANY>]>')))


# -- external entities: local files and the network -----------------------------------------


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-4f1c9 the server's private key\n")
    return path


@pytest.mark.parametrize("target", ["file:///etc/passwd", "secret"])
def test_external_entities_never_read_local_files(target, secret_file):
    uri = secret_file.as_uri() if target == "secret" else target
    xml = hostile(f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "{uri}">]>', "&xxe;")
    xml = xml.replace("score = 1 if band == 'child' else 0", "score = '&xxe;'")
    result = check(xml)
    refused(result)
    said = everything_said(result)
    assert "TOP-SECRET" not in said and "the server's private key" not in said
    passwd = Path("/etc/passwd")
    if passwd.exists():
        first_line = passwd.read_text().splitlines()[0]
        assert first_line not in said and "root:x:0:0" not in said


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - the name http.server calls
        _Recorder.requests.append(self.path)
        body = b'<!ENTITY stolen "fetched from the network">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server that records every request; yields its base URL."""
    _Recorder.requests = []
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    with __import__("urllib.request").request.urlopen(url + "/ping") as answer:  # the server does answer
        assert answer.status == 200
    _Recorder.requests.clear()
    yield url
    httpd.shutdown()
    httpd.server_close()
    thread.join()


NETWORK_ATTACKS = {
    "external DTD": ('<!DOCTYPE bpmn:definitions SYSTEM "{url}/external.dtd">', ""),
    "public DTD": ('<!DOCTYPE x PUBLIC "-//EVIL//DTD x//EN" "{url}/public.dtd">', ""),
    "external entity": ('<!DOCTYPE x [<!ENTITY e SYSTEM "{url}/entity">]>', "&e;"),
    "parameter entity": ('<!DOCTYPE x [<!ENTITY % p SYSTEM "{url}/parameter"> %p;]>', "&stolen;"),
}


@pytest.mark.parametrize("attack", NETWORK_ATTACKS)
def test_external_dtds_and_entities_never_reach_the_network(attack, server):
    doctype, reference = NETWORK_ATTACKS[attack]
    result = check(hostile(doctype.format(url=server), reference))
    refused(result)
    assert "fetched from the network" not in everything_said(result)
    assert _Recorder.requests == []


def test_xinclude_is_refused_and_never_fetched(server):
    xml = hostile("", f'<xi:include href="{server}/include.xml" parse="text" />',
                  xmlns='xmlns:xi="http://www.w3.org/2001/XInclude"')
    message = refused(check(xml), "the file uses XInclude (line")
    assert "not allowed" in message
    assert _Recorder.requests == []


def test_schema_locations_and_stylesheets_are_never_fetched(server):
    xml = hostile(f'<?xml-stylesheet type="text/xsl" href="{server}/style.xsl"?>', "",
                  xmlns=('xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation='
                         f'"http://www.omg.org/spec/BPMN/20100524/MODEL {server}/BPMN20.xsd"'))
    result = check(xml.replace('<?xml version="1.0" encoding="UTF-8"?>\n', "", 1), roles=None)
    assert result.ok, [str(p) for p in result.problems]  # harmless once nothing is fetched
    assert _Recorder.requests == []


# -- size and encoding ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [str, bytes])
def test_a_file_over_the_size_limit_is_refused_before_parsing(kind, monkeypatch):
    xml = hostile("", "x" * (2 * 1024 * 1024))
    size = len(xml.encode("utf-8"))
    parse = xmlsafe.parse
    monkeypatch.setattr(xmlsafe, "parse", lambda text: pytest.fail("parsed a file over the limit")
                        if len(text) > xmlsafe.DEFAULT_MAX_BYTES else parse(text))
    result = check(xml if kind is str else xml.encode("utf-8"))
    message = refused(result, "the file is too large")
    assert f"{size:,} bytes" in message and "the limit is 1,048,576 bytes" in message
    assert "pathway.bpmn" not in result.files  # not kept either


def test_the_size_limit_can_be_set():
    assert check(good_files()["pathway.bpmn"], max_bytes=10_000).ok
    assert "the limit is 1,000 bytes" in refused(check(good_files()["pathway.bpmn"], max_bytes=1_000),
                                                 "the file is too large")


def test_a_multibyte_text_is_measured_in_bytes():
    xml = hostile("", "é" * 600_000)  # 600,000 characters, 1.2 MB in UTF-8
    refused(check(xml), "the file is too large")


@pytest.mark.parametrize(("content", "message"), [
    (hostile("", "Protección").encode("latin-1"), "the file is not UTF-8 text (byte 0xf3 on line 8); save it as UTF-8"),
    (hostile("", "x").encode("utf-16"), "the file is saved as UTF-16; save it as UTF-8"),
    (hostile("", "x").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"'),
     "the file declares the encoding 'ISO-8859-1'; save it as UTF-8"),
    (hostile("", "x").replace('encoding="UTF-8"', 'encoding="UTF-7"').encode(),
     "the file declares the encoding 'UTF-7'"),
    (hostile("", "\udcff"), "the file contains characters that are not valid text (line 8)"),
])
def test_text_that_is_not_utf8_is_refused(content, message):
    assert refused(check(content), message).startswith(message)


# -- each layer on its own ----------------------------------------------------------------------


@pytest.mark.parametrize("declaration", ["<!DOCTYPE x>", "<!ENTITY a 'b'>", "<!doctype x>", "<!  ELEMENT a ANY>",
                                         "<!ATTLIST a b CDATA #IMPLIED>", "<!NOTATION n SYSTEM 'x'>"])
def test_the_text_scan_refuses_every_declaration(declaration):
    with pytest.raises(xmlsafe.UnsafeXml, match="document type or entity declaration"):
        xmlsafe.decode(f"<?xml version='1.0'?>\n{declaration}\n<a/>")


def test_the_text_scan_leaves_escaped_text_alone():
    assert xmlsafe.decode("<a>&lt;!DOCTYPE x&gt;</a>") == "<a>&lt;!DOCTYPE x&gt;</a>"


def test_the_parser_refuses_a_dtd_the_scan_did_not_see(secret_file, server):
    """If the scan were bypassed, parse() still refuses, and has expanded and fetched nothing.
    (libxml2 stops the billion laughs itself, as too much amplification, even without
    resolving entities: it still walks their content — the reason the text scan comes first.)"""
    with pytest.raises((xmlsafe.UnsafeXml, etree.XMLSyntaxError)):
        xmlsafe.parse(hostile(BILLION_LAUGHS, "&lol9;"))
    for doctype, reference in [(f'<!DOCTYPE x [<!ENTITY s SYSTEM "{secret_file.as_uri()}">]>', "&s;"),
                               (f'<!DOCTYPE x SYSTEM "{server}/x.dtd">', ""), ("<!DOCTYPE x>", "")]:
        with pytest.raises(xmlsafe.UnsafeXml, match="document type or entity declaration"):
            xmlsafe.parse(hostile(doctype, reference))
    assert _Recorder.requests == []


def test_the_hardened_parser_expands_reads_and_fetches_nothing(secret_file, server):
    for doctype, reference in [
        (BILLION_LAUGHS, "&lol9;"),
        (f'<!DOCTYPE x [<!ENTITY s SYSTEM "{secret_file.as_uri()}">]>', "&s;"),
        (f'<!DOCTYPE x [<!ENTITY % p SYSTEM "{server}/p"> %p;]>', ""),
        (f'<!DOCTYPE x SYSTEM "{server}/x.dtd">', ""),
    ]:
        started = time.perf_counter()
        try:
            root = etree.fromstring(hostile(doctype, reference).encode(), xmlsafe.hardened_parser())
        except etree.XMLSyntaxError:
            root = None  # refusing is fine too
        assert time.perf_counter() - started < 1.0
        if root is None:
            continue
        text = etree.tostring(root, encoding="unicode")
        assert "lollol" not in text and "TOP-SECRET" not in text and "fetched" not in text
    assert _Recorder.requests == []


def test_deep_nesting_is_refused_by_the_parser_limits():
    started = time.perf_counter()
    result = check(hostile("", "<x>" * 50_000))
    assert time.perf_counter() - started < 1.0
    assert "Excessive depth" in refused(result, "XML syntax error")


# -- SpiffWorkflow only ever sees safe, parsed trees ------------------------------------------


def test_spiffworkflow_only_gets_parsed_trees(monkeypatch):
    """Spiff's own add_*_str/_io/_file(s) parse with lxml's default parser, which resolves
    entities: none of them may be used; add_bpmn_xml/add_dmn_xml only get trees without a DTD."""
    for method in ("add_bpmn_str", "add_bpmn_io", "add_bpmn_file", "add_bpmn_files", "add_bpmn_files_by_glob",
                   "add_dmn_str", "add_dmn_io", "add_dmn_file", "add_dmn_files", "add_dmn_files_by_glob"):
        monkeypatch.setattr(SpiffBpmnParser, method, lambda *a, _m=method, **k: pytest.fail(f"{_m} was called"))
    received = []
    for method in ("add_bpmn_xml", "add_dmn_xml"):
        original = getattr(SpiffBpmnParser, method)

        def spy(self, tree, *args, _original=original, **kwargs):
            received.append(tree)
            return _original(self, tree, *args, **kwargs)

        monkeypatch.setattr(SpiffBpmnParser, method, spy)
    for main, files in discover_pathways(ROOT / "workflows").values():
        assert check_pathway(files, main).ok
    assert received and all(isinstance(tree, etree._Element) for tree in received)
    assert all(not tree.getroottree().docinfo.doctype for tree in received)


def test_no_code_in_app_hands_raw_xml_to_spiffworkflow():
    pattern = re.compile(r"\.add_(bpmn|dmn)_(str|io|file|files|files_by_glob)\(")
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        offenders += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                      if pattern.search(line)]
    assert offenders == []


def test_discovering_a_hostile_main_file_expands_nothing(tmp_path):
    (tmp_path / "evil.bpmn").write_text(hostile(BILLION_LAUGHS, "&lol9;"))
    started = time.perf_counter()
    main, files = discover_pathways(tmp_path)["evil"]  # keyed by its name: its process id is not read
    assert time.perf_counter() - started < 1.0
    assert DTD_REFUSED in str(check_pathway(files, main).problems[0])
