"""Reading SMS replies: ACCEPT / DECLINE <code> [reason] in four languages, STOP and START."""

from __future__ import annotations

import pytest

from app.inbox.services import DECLINE_REASONS
from app.sms.replies import REASON_PHRASES, Reply, parse_reply

CODE = "K7M2QX"


@pytest.mark.parametrize("text", [
    "ACCEPT K7M2QX", "accept k7m2qx", "Accept K7M2QX.", "  ACCEPT   K7M2QX  ", "ACCEPT: K7M2QX!",
    "¡ACEPTO K7M2QX!", "aceptar k7m2qx", "Acepto, K7M2QX", "AKCEPTUJ K7M2QX", "Przyjmuję K7M2QX",
    "PRZYJMUJE K7M2QX", "przyjmuje k7m2qx", "ПРИЙНЯТИ K7M2QX", "приймаю k7m2qx", "Приймаю K7M2QX.",
    "K7M2QX ACCEPT", "k7m2qx acepto", "ACCEPT\nK7M2QX", "\"ACCEPT\" \"K7M2QX\"", "ACCEPT K7M2QX thanks",
    "ACCEPT К7М2QХ",  # the code typed with Cyrillic К, М, Х
])
def test_accept(text):
    assert parse_reply(text) == Reply("accept", CODE)


@pytest.mark.parametrize("text,reason,note", [
    ("DECLINE K7M2QX", "other", None),
    ("decline k7m2qx FULL", "no_capacity", None),
    ("DECLINE K7M2QX capacity", "no_capacity", None),
    ("DECLINE K7M2QX no capacity until May", "no_capacity", "until May"),
    ("RECHAZAR K7M2QX LLENO", "no_capacity", None),
    ("Rechazo K7M2QX, lleno.", "no_capacity", None),
    ("ODRZUCAM K7M2QX BRAK MIEJSC", "no_capacity", None),
    ("odrzuć k7m2qx brak miejsc", "no_capacity", None),
    ("ВІДХИЛИТИ K7M2QX немає місць", "no_capacity", None),
    ("ВІДХИЛЯЮ K7M2QX ЗАПОВНЕНО", "no_capacity", None),
    ("DECLINE K7M2QX ELIGIBLE", "not_eligible", None),
    ("DECLINE K7M2QX not eligible", "not_eligible", None),
    ("DECLINE K7M2QX - NOT ELIGIBLE (age)", "not_eligible", "(age)"),
    ("RECHAZO K7M2QX no elegible", "not_eligible", None),
    ("DECLINE K7M2QX AREA", "not_in_area", None),
    ("DECLINE K7M2QX not in area", "not_in_area", None),
    ("RECHAZAR K7M2QX zona", "not_in_area", None),
    ("ВІДХИЛИТИ K7M2QX район", "not_in_area", None),
    ("DECLINE K7M2QX closed", "service_unavailable", None),
    ("DECLINE K7M2QX we only work with children", "other", "we only work with children"),
    ("RECHAZO K7M2QX   solo   mujeres ", "other", "solo mujeres"),
    ("K7M2QX DECLINE FULL", "no_capacity", None),
])
def test_decline(text, reason, note):
    assert parse_reply(text) == Reply("decline", CODE, reason=reason, note=note)


@pytest.mark.parametrize("text", [
    "STOP", "stop", "Stop.", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "BAJA", "parar",
    "СТОП", "стоп", "ZATRZYMAJ", "STOP K7M2QX",
])
def test_stop(text):
    assert parse_reply(text) == Reply(None, None, stop=True)


@pytest.mark.parametrize("text", ["START", "start", "Start!", " UNSTOP ", "yes", "Yes.", "INICIAR", "Старт"])
def test_start(text):
    assert parse_reply(text) == Reply(None, None, start=True)


@pytest.mark.parametrize("text,expected", [
    ("", Reply(None, None)),
    (None, Reply(None, None)),
    ("   !!! ", Reply(None, None)),
    ("hello", Reply(None, None)),
    ("yes please", Reply(None, None)),  # START words count only alone
    ("YES K7M2QX", Reply(None, None)),
    ("ALTA", Reply(None, None)),  # one letter from ALTO (stop): not an opt-in
    ("ACCEPT", Reply("accept", None)),  # no code: a help reply
    ("ACCEPT K7M2Q", Reply("accept", None)),  # too short
    ("ACCEPT K7M2QXX", Reply("accept", None)),  # too long
    ("ACCEPT K0M2QX", Reply("accept", None)),  # 0 is not in the code alphabet
    ("DECLINE", Reply("decline", None)),
    ("I ACCEPT K7M2QX", Reply(None, None)),  # the word first (or right after the code)
    ("please call me", Reply(None, None)),
])
def test_not_understood(text, expected):
    assert parse_reply(text) == expected


def test_reason_words_are_coded_reasons():
    assert set(REASON_PHRASES.values()) <= set(DECLINE_REASONS)


def test_long_notes_are_cut():
    reply = parse_reply("DECLINE K7M2QX " + "x" * 5000)
    assert reply.reason == "other" and len(reply.note) == 500


@pytest.mark.parametrize("text", ["\x00\x01", "ACCEPT \U0001F600", "🙂" * 1000, "\ud800", "A" * 100000])
def test_never_raises(text):
    assert isinstance(parse_reply(text), Reply)


def test_every_reply_fits_two_segments_in_every_language(app):
    """Replies to providers are SMS too: the two-segment limit holds for each kind and language."""
    import pytest as _pytest

    from app.sms.inbound import _text
    from app.sms.services import segments

    with app.test_request_context():
        for locale in ("en", "es", "pl", "uk"):
            for kind in ("accepted", "declined", "already", "wrong_number", "unknown", "help"):
                body = _text(locale, kind, code="K7M2QX", target_id=99999999)
                if segments(body) > 2:
                    _pytest.fail(f"{locale}/{kind}: {segments(body)} segments: {body}")
