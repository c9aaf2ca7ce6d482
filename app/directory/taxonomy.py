"""The directory's controlled vocabularies: service types, sectors, eligibility and languages.

Codes are stable identifiers stored in the database, in CSV files and in workflow data:
never change a code in use, add a new one instead. Titles are translated lazily; call
``str()`` (or :func:`title`) inside a request to get them in the current language.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

#: Service types, in the order forms and filters show them.
SERVICE_TYPES = {
    "psychosocial_support": _l("Psychosocial support"),
    "mental_health": _l("Mental health care"),
    "health": _l("Health care"),
    "clinical_management_of_rape": _l("Clinical management of rape"),
    "safe_shelter": _l("Safe shelter"),
    "legal_aid": _l("Legal aid and access to justice"),
    "reporting_channel": _l("Reporting channel"),
    "family_tracing": _l("Family tracing and reunification"),
    "case_management": _l("Case management"),
    "livelihoods": _l("Livelihoods"),
    "cash_assistance": _l("Cash assistance"),
    "education": _l("Education"),
    "non_food_items": _l("Non-food items"),
    "interpretation": _l("Interpretation"),
}

#: Areas of responsibility a service works in.
SECTORS = {
    "CP": _l("Child protection"),
    "GBV": _l("Gender-based violence"),
    "CT": _l("Counter-trafficking"),
}

#: Nationality and status categories; a service with none listed serves everyone.
STATUSES = {
    "refugee": _l("Refugee"),
    "asylum_seeker": _l("Asylum seeker"),
    "migrant": _l("Migrant"),
    "idp": _l("Internally displaced person"),
    "host_community": _l("Host community"),
    "stateless": _l("Stateless person"),
    "returnee": _l("Returnee"),
}

#: Sexes a service serves; a service with none listed serves everyone.
SEXES = {
    "female": _l("Female"),
    "male": _l("Male"),
    "other": _l("Other"),
}

#: Languages a service works in (ISO 639-1), titled in the reader's language.
LANGUAGES = {
    "es": _l("Spanish"),
    "en": _l("English"),
    "pl": _l("Polish"),
    "uk": _l("Ukrainian"),
    "ru": _l("Russian"),
    "pt": _l("Portuguese"),
    "fr": _l("French"),
    "ar": _l("Arabic"),
}

#: Languages an SMS to a focal point can be written in (the app's own UI languages).
SMS_LOCALES = ("en", "es", "pl", "uk")


def title(vocabulary: dict, code: str | None) -> str:
    """The translated title of ``code`` in ``vocabulary``, or the code itself if unknown."""
    if code is None:
        return ""
    found = vocabulary.get(code)
    return str(found) if found is not None else code


def choices(vocabulary: dict) -> list[tuple[str, str]]:
    """``(code, translated title)`` pairs in the vocabulary's order (call inside a request)."""
    return [(code, str(label)) for code, label in vocabulary.items()]
