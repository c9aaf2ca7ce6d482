"""Catalogs: complete where promised, placeholders intact, compiled files fresh, extraction real."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
LOCALES = ("es", "pl", "uk")
COMPLETE = ("es",)
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]|%[sdifr]|\{\w*\}")


def _catalog(locale):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=locale)


def _extracted() -> dict[str, set[str]]:
    """Messages extracted from the source now, grouped by kind of file."""
    with open(ROOT / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[str, set[str]] = {"python": set(), "templates": set(), "forms": set(), "workflows": set()}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    for filename, _lineno, message, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        msgid = message[0] if isinstance(message, tuple) else message
        kind = ("forms" if filename.startswith("forms") else
                "workflows" if filename.startswith("workflows") else
                "templates" if filename.endswith(".html") else "python")
        found[kind].add(msgid)
    return found


@pytest.fixture(scope="module")
def extracted():
    return _extracted()


def test_extraction_finds_messages_in_every_kind_of_file(extracted):
    for kind, messages in extracted.items():
        assert len(messages) >= 3, f"extraction found almost nothing in {kind}: paths in babel.cfg wrong?"
    assert "Log in" in extracted["templates"]
    assert "Demo protection referral" in extracted["workflows"]
    assert "Has the person given informed consent to be referred?" in extracted["forms"]
    assert "Too many failed attempts. Please wait a few minutes and try again." in extracted["python"]


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_holds_every_extracted_message(locale, extracted):
    catalog = _catalog(locale)
    ids = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog if m.id}
    missing = {m for kind in extracted.values() for m in kind} - ids
    assert not missing, f"{locale}: run `make i18n` — not in the catalog: {sorted(missing)[:10]}"


@pytest.mark.parametrize("locale", COMPLETE)
def test_complete_catalogs_translate_everything(locale):
    def missing(m):
        forms = m.string if isinstance(m.string, (list, tuple)) else (m.string,)
        return m.fuzzy or not all(forms)

    untranslated = [m.id for m in _catalog(locale) if m.id and missing(m)]
    assert not untranslated, f"{locale}: untranslated or fuzzy: {untranslated[:10]}"


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_match_the_source(locale):
    wrong = []
    for message in _catalog(locale):
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = sorted(PLACEHOLDER.findall(ids[0]))
        for translated in strings:
            if translated and sorted(PLACEHOLDER.findall(translated)) != expected:
                wrong.append((message.id, translated))
    assert not wrong, f"{locale}: placeholders differ: {wrong[:5]}"


def _as_dict(catalog) -> dict:
    def plain(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {plain(m.id): plain(m.string) for m in catalog if m.id}


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_is_fresh(locale):
    mo_path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"
    assert mo_path.exists(), f"{mo_path} missing: run `make i18n-compile`"
    fresh = io.BytesIO()
    write_mo(fresh, _catalog(locale), use_fuzzy=True)
    fresh.seek(0)
    with open(mo_path, "rb") as fh:
        compiled = read_mo(fh)
    expected = read_mo(fresh)
    assert _as_dict(compiled) == _as_dict(expected), (
        f"{mo_path} is stale: run `make i18n-compile`")
