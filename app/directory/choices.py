"""Choice lists the directory gives to formkit forms (``choices_from: service_types`` ...).

Each source is called when a form is built, inside a request, so labels come out in the
current language and places are read from the database then, never at import time.
"""

from __future__ import annotations

from flask_babel import gettext as _

from app.directory import taxonomy
from app.formkit import register_choice_source


def service_type_choices() -> list[tuple[str, str]]:
    """Every service type code with its translated title, in taxonomy order."""
    return taxonomy.choices(taxonomy.SERVICE_TYPES)


def status_choices() -> list[tuple[str, str]]:
    """Nationality and status categories with translated titles."""
    return taxonomy.choices(taxonomy.STATUSES)


def language_choices() -> list[tuple[str, str]]:
    """Languages a service can speak (ISO 639-1 codes) with translated names."""
    return taxonomy.choices(taxonomy.LANGUAGES)


def sex_choices() -> list[tuple[str, str]]:
    """The sexes services can be restricted to, plus "Prefers not to say" for the person
    (matching treats it as unknown: it excludes the person from nothing)."""
    return [*taxonomy.choices(taxonomy.SEXES), ("not_disclosed", _("Prefers not to say"))]


def place_source() -> list[tuple[str, str]]:
    """Regions and municipalities by code, labelled "Maracaibo, Zulia, Venezuela", sorted."""
    from app.directory.places import place_choices

    return place_choices()


#: Name in forms/ -> source.
SOURCES = {
    "service_types": service_type_choices,
    "places": place_source,
    "statuses": status_choices,
    "languages": language_choices,
    "sexes": sex_choices,
}


def register_sources() -> None:
    """Register every directory source with formkit (idempotent)."""
    for name, source in SOURCES.items():
        register_choice_source(name, source)
