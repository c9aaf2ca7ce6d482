"""Which services fit a person's needs, why, which do not and why not, and what is missing.

Matching never guesses against the person: an answer left empty (age, sex, status, place)
excludes nobody, but a service's restrictions are still listed among its reasons so the
caseworker sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.directory import taxonomy
from app.directory.models import Service, ServiceGap
from app.directory.places import get_place, lineage_codes
from app.extensions import db

#: Gap reasons stored in :attr:`ServiceGap.reason`.
GAP_NONE_LISTED = "none_listed"
GAP_NONE_ELIGIBLE = "none_eligible"


@dataclass
class Person:
    """What matching needs to know about the person; None or empty means unknown."""

    age: int | None = None
    sex: str | None = None
    languages: list[str] = field(default_factory=list)
    status: str | None = None
    place_code: str | None = None


@dataclass
class Match:
    service: Service
    #: Short translated phrases: "Serves Maracaibo", "Speaks Spanish", ...
    reasons: list[str]
    #: Higher ranks first: place closeness x100, a shared language x10, free places x1.
    score: int


@dataclass
class Exclusion:
    service: Service
    #: Every failed rule, translated, joined with "; " (most decisive first).
    reason: str
    #: Whether the service serves the person's place (these are listed first).
    serves_place: bool = True


@dataclass
class MatchResult:
    matches: list[Match] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    #: Needed service types with no match, in the order they were asked for.
    gaps: list[str] = field(default_factory=list)
    #: Gap type -> :data:`GAP_NONE_LISTED` or :data:`GAP_NONE_ELIGIBLE`.
    gap_reasons: dict[str, str] = field(default_factory=dict)


def age_range(low: int | None, high: int | None) -> str:
    """"0–17", "18 and over", "up to 17", or "" when there is no bound."""
    if low is not None and high is not None:
        return f"{low}–{high}"
    if low is not None:
        return _("%(age)d and over", age=low)
    if high is not None:
        return _("up to %(age)d", age=high)
    return ""


def _titles(vocabulary: dict, codes: list[str]) -> str:
    return ", ".join(taxonomy.title(vocabulary, c) for c in codes)


class _Lineage:
    """The person's place and its ancestors, with names, nearest first."""

    def __init__(self, place_code: str | None):
        self.codes = lineage_codes(place_code)
        place = get_place(place_code)
        chain = [place, *place.ancestors] if place is not None else []
        self.names = {p.code: p.name for p in chain}
        #: Closeness of each code: the person's own place scores highest.
        self.closeness = {code: len(self.codes) - i for i, code in enumerate(self.codes)}

    def nearest(self, service: Service) -> str | None:
        served = {p.code for p in service.places}
        return next((code for code in self.codes if code in served), None)


def _place_reason(lineage: _Lineage, code: str) -> str:
    name = lineage.names.get(code, code)
    if code == lineage.codes[0]:
        return _("Serves %(place)s", place=name)
    return _("Serves all of %(place)s", place=name)


def _check(service: Service, person: Person, sector: str | None, lineage: _Lineage,
           ) -> tuple[list[str], list[str], int]:
    """(failures, reasons, score) of one service for the person."""
    failures, reasons, score = [], [], 0
    if service.paused:
        failures.append(_("Paused by the coordinator"))
    if not service.accepting_referrals:
        failures.append(_("Not accepting new referrals"))
    elif service.capacity == 0:
        failures.append(_("Full: no places free"))
    if sector and sector not in service.sectors:
        failures.append(_("Does not work in %(sector)s", sector=taxonomy.title(taxonomy.SECTORS, sector)))
    if lineage.codes:
        nearest = lineage.nearest(service)
        if nearest is None:
            failures.append(_("Does not serve this place"))
        else:
            reasons.append(_place_reason(lineage, nearest))
            score += 100 * lineage.closeness[nearest]
    ages = age_range(service.min_age, service.max_age)
    if ages:
        too_young = person.age is not None and service.min_age is not None and person.age < service.min_age
        too_old = person.age is not None and service.max_age is not None and person.age > service.max_age
        if too_young or too_old:
            failures.append(_("Only for ages %(ages)s", ages=ages))
        else:
            reasons.append(_("Ages %(ages)s", ages=ages))
    if service.sexes:
        if person.sex in taxonomy.SEXES and person.sex not in service.sexes:
            failures.append(_("Only for: %(sexes)s", sexes=_titles(taxonomy.SEXES, service.sexes)))
        else:
            reasons.append(_("For: %(sexes)s", sexes=_titles(taxonomy.SEXES, service.sexes)))
    if service.statuses:
        if person.status and person.status not in service.statuses:
            failures.append(_("Only for: %(statuses)s", statuses=_titles(taxonomy.STATUSES, service.statuses)))
        else:
            reasons.append(_("For: %(statuses)s", statuses=_titles(taxonomy.STATUSES, service.statuses)))
    shared = [code for code in person.languages if code in service.languages]
    if shared:
        reasons.append(_("Speaks %(languages)s", languages=_titles(taxonomy.LANGUAGES, shared)))
        score += 10
    if service.capacity:
        reasons.append(ngettext("%(num)d place free", "%(num)d places free", service.capacity))
        score += 1
    elif not failures:
        reasons.append(_("Accepting new referrals"))
    return failures, reasons, score


def match_services(needs: list[str], person: Person, sector: str | None = None) -> MatchResult:
    """Rank the services of the needed types for ``person``; list exclusions and gaps.

    A service of a needed type is a match when it is not paused, accepts referrals and is
    not full, works in ``sector`` (if given), serves the person's place or a place around
    it, and the person's age, sex and status fit. Matches are ranked by closeness of the
    place served (municipality, then region, then country), a shared language, known free
    places, then name. Services of other types are ignored, not excluded.
    """
    needs = list(dict.fromkeys(n for n in needs if n))
    result = MatchResult()
    if not needs:
        return result
    lineage = _Lineage(person.place_code)
    services = db.session.scalars(
        select(Service).where(Service.service_type.in_(needs))
        .options(selectinload(Service.places), selectinload(Service.organisation))
    ).all()
    serves_place: set[str] = set()
    for service in services:
        failures, reasons, score = _check(service, person, sector, lineage)
        place_ok = not lineage.codes or lineage.nearest(service) is not None
        if place_ok and (not sector or sector in service.sectors):
            serves_place.add(service.service_type)
        if failures:
            result.excluded.append(Exclusion(service, "; ".join(failures), place_ok))
        else:
            result.matches.append(Match(service, reasons, score))
    result.matches.sort(key=lambda m: (-m.score, m.service.name.casefold(), m.service.id))
    result.excluded.sort(key=lambda e: (not e.serves_place, e.service.name.casefold(), e.service.id))
    matched = {m.service.service_type for m in result.matches}
    result.gaps = [n for n in needs if n not in matched]
    result.gap_reasons = {n: GAP_NONE_ELIGIBLE if n in serves_place else GAP_NONE_LISTED for n in result.gaps}
    return result


def record_gaps(referral_id: int | None, gaps: list[str], place_code: str | None, sector: str | None,
                reasons: dict[str, str] | None = None) -> list[ServiceGap]:
    """Record each gap once per referral and service type; flush. Returns the new rows.

    Idempotent for a referral: a type already recorded for it is skipped. Gaps without a
    referral (``referral_id`` None) are always added.
    """
    known: set[str] = set()
    if referral_id is not None:
        known = set(db.session.scalars(select(ServiceGap.service_type)
                                       .where(ServiceGap.referral_id == referral_id)))
    added = []
    for service_type in dict.fromkeys(gaps):
        if service_type in known:
            continue
        gap = ServiceGap(referral_id=referral_id, service_type=service_type, sector=sector,
                         place_code=place_code, reason=(reasons or {}).get(service_type, GAP_NONE_LISTED))
        db.session.add(gap)
        added.append(gap)
    db.session.flush()
    return added


# -- workflow task data ------------------------------------------------------------------


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _as_list(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value if v not in (None, "")]


def person_from_task_data(data: dict) -> Person:
    """A :class:`Person` from a workflow task's data (``age``, ``sex``, ``languages``, ``status``,
    ``location``); strings and missing keys are tolerated."""
    return Person(age=_as_int(data.get("age")), sex=data.get("sex") or None,
                  languages=_as_list(data.get("languages")), status=data.get("status") or None,
                  place_code=data.get("location") or None)


def match_for_task_data(data: dict, sector: str | None = None) -> MatchResult:
    """:func:`match_services` for the ``needs`` (type codes) and the person in task ``data``."""
    return match_services(_as_list(data.get("needs")), person_from_task_data(data), sector)


def match_label(match: Match) -> str:
    """"Service — Organisation (Serves Maracaibo; Speaks Spanish)" for a choice list."""
    return "{} — {} ({})".format(match.service.name, match.service.organisation.name, "; ".join(match.reasons))


def matching_choices(data: dict) -> list[tuple[str, str]]:
    """``(service id, label)`` of the services matching task ``data``, best first.

    The sector is read from ``data["sector"]`` when present.
    """
    result = match_for_task_data(data, data.get("sector") or None)
    return [(str(m.service.id), match_label(m)) for m in result.matches]
