"""Reading a provider's SMS reply: ``ACCEPT <code>`` / ``DECLINE <code> [reason]`` in English,
Spanish, Polish and Ukrainian, or an opt-out or opt-in keyword.

A message that starts with a STOP-family word is an opt-out (erring towards sending nothing).
A START-family word (Twilio's START, UNSTOP, YES, and ``INICIAR``, ``СТАРТ``) opts back in only
when it is the whole message, as carriers require: ``YES K7M2QX`` is no opt-in but a reply that
is not understood (and gets the help text). ``ALTA`` is left out on purpose: one letter from the
Spanish stop word ``ALTO``, and a wrong opt-in sends messages to someone who asked for none.

Case, accents and diacritics, and the punctuation around words are ignored; the code may come
before or after the word. A decline may carry a coded reason word (``FULL``, ``LLENO``,
``BRAK MIEJSC``, ``AREA``, ...); anything else after the code is kept as a free-text note with
the reason ``other``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: The alphabet of target codes (app.referrals.pathway_tasks): no 0/O, 1/I/L, U.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 6
MAX_NOTE_CHARS = 500

_CODE = re.compile(rf"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
_WORD = re.compile(r"[^\W_]+")
#: Latin letters NFKD does not decompose.
_FOLD = {"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ø": "o", "Ø": "O", "ß": "ss"}
#: Cyrillic letters that look like Latin ones, for a code typed on a Cyrillic keyboard.
_CYRILLIC_LOOKALIKES = str.maketrans("АВЕКМНОРСТХЅ", "ABEKMHOPCTXS")


def normalise(text: str) -> str:
    """Upper case, without diacritics (``PRZYJMUJĘ`` -> ``PRZYJMUJE``, ``ВІДХИЛЯЮ`` stays Cyrillic)."""
    text = "".join(_FOLD.get(c, c) for c in text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.upper()


def _words(*words: str) -> frozenset[str]:
    return frozenset(normalise(w) for w in words)


ACCEPT_WORDS = _words("ACCEPT", "ACCEPTED", "ACEPTAR", "ACEPTO", "ACEPTADO", "AKCEPTUJ", "AKCEPTUJE",
                      "PRZYJMUJĘ", "PRZYJMUJE", "PRZYJMIJ", "ПРИЙНЯТИ", "ПРИЙМАЮ", "ПРИЙНЯТО")
DECLINE_WORDS = _words("DECLINE", "DECLINED", "REJECT", "RECHAZAR", "RECHAZO", "RECHAZADO",
                       "ODRZUCAM", "ODRZUĆ", "ODRZUCIC", "ВІДХИЛИТИ", "ВІДХИЛЯЮ", "ВІДХИЛЕНО")
STOP_WORDS = _words("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
                    "BAJA", "PARAR", "ALTO", "CANCELAR", "ZATRZYMAJ", "REZYGNUJE", "REZYGNUJĘ",
                    "СТОП", "ВІДПИСАТИСЯ", "ЗУПИНИТИ")
START_WORDS = _words("START", "UNSTOP", "YES", "INICIAR", "СТАРТ")

#: Coded decline reasons (app.inbox.services.DECLINE_REASONS) by the words that say them; the
#: longest phrase that starts the text after the code wins.
REASON_PHRASES: dict[str, str] = {}
for _reason, _phrases in {
    "no_capacity": ("FULL", "CAPACITY", "NO CAPACITY", "NO SPACE", "LLENO", "COMPLETO", "CAPACIDAD",
                    "SIN CAPACIDAD", "SIN CUPO", "BRAK MIEJSC", "BRAK MIEJSCA", "PEŁNE", "PELNO", "PEŁNO",
                    "ЗАПОВНЕНО", "НЕМАЄ МІСЦЬ", "НЕМА МІСЦЬ", "МІСЦЬ НЕМАЄ"),
    "not_eligible": ("ELIGIBLE", "NOT ELIGIBLE", "INELIGIBLE", "ELIGIBILITY", "ELEGIBLE", "NO ELEGIBLE",
                     "NO CUMPLE", "NIE KWALIFIKUJE", "NIEKWALIFIKUJE", "KRYTERIA",
                     "НЕ ВІДПОВІДАЄ", "КРИТЕРІЇ"),
    "not_in_area": ("AREA", "NOT IN AREA", "OUT OF AREA", "ZONA", "FUERA DE ZONA", "FUERA DEL AREA",
                    "OBSZAR", "REJON", "POZA OBSZAREM", "РАЙОН", "ЗОНА", "НЕ В РАЙОНІ"),
    "service_unavailable": ("UNAVAILABLE", "CLOSED", "NO DISPONIBLE", "CERRADO", "NIEDOSTĘPNE",
                            "ZAMKNIĘTE", "НЕДОСТУПНО", "ЗАЧИНЕНО"),
}.items():
    for _phrase in _phrases:
        REASON_PHRASES[normalise(_phrase)] = _reason


@dataclass(frozen=True)
class Reply:
    decision: str | None  # "accept", "decline" or None (not understood, STOP or START)
    code: str | None
    reason: str | None = None  # for a decline: a key of DECLINE_REASONS
    note: str | None = None  # for a decline: the free text after the code that is no coded reason
    stop: bool = False
    start: bool = False


def _as_code(word: str) -> str | None:
    candidate = normalise(word).translate(_CYRILLIC_LOOKALIKES)
    return candidate if _CODE.fullmatch(candidate) else None


def parse_reply(text: str | None) -> Reply:
    """What an SMS reply says; see the module doc. Never raises."""
    if not isinstance(text, str):
        return Reply(None, None)
    matches = list(_WORD.finditer(text))
    words = [normalise(m.group()) for m in matches]
    if not words:
        return Reply(None, None)
    if words[0] in STOP_WORDS:
        return Reply(None, None, stop=True)
    if len(words) == 1 and words[0] in START_WORDS:
        return Reply(None, None, start=True)
    # The word, then the code; or the code, then the word.
    if words[0] in ACCEPT_WORDS or words[0] in DECLINE_WORDS:
        verb, code = words[0], _as_code(matches[1].group()) if len(words) > 1 else None
    elif len(words) > 1 and (words[1] in ACCEPT_WORDS or words[1] in DECLINE_WORDS) \
            and _as_code(matches[0].group()):
        verb, code = words[1], _as_code(matches[0].group())
    else:
        return Reply(None, None)
    if verb in ACCEPT_WORDS:
        return Reply("accept", code)
    if code is None or len(matches) < 3:
        return Reply("decline", code, reason="other" if code else None)
    rest_words = words[2:]
    for size in range(min(len(rest_words), 3), 0, -1):
        reason = REASON_PHRASES.get(" ".join(rest_words[:size]))
        if reason:
            return Reply("decline", code, reason=reason, note=_note(text[matches[1 + size].end():]))
    return Reply("decline", code, reason="other", note=_note(text[matches[1].end():]))


def _note(text: str) -> str | None:
    """The free text after the code or reason, without the separators before it."""
    text = " ".join(text.split()).lstrip(" ,.;:-–—!?")
    return text[:MAX_NOTE_CHARS] if _WORD.search(text) else None
