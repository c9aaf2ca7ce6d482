"""Places: loading the country -> region -> municipality hierarchy, finding and listing them.

A places file is YAML::

    countries:
      - code: ve
        name: Venezuela
        regions:
          - code: zulia
            name: Zulia
            municipalities:
              - {code: maracaibo, name: Maracaibo}

Codes in the file are slugs; a place's full code joins them with slashes
(``ve/zulia/maracaibo``). Loading is idempotent: places are matched by full code, renamed
or re-parented when the file says so, and never deleted (services may still point at them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import select

from app.directory.models import Place, PlaceLevel
from app.extensions import db

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
#: The key that holds each level's children, from the top down.
_CHILD_KEYS = (("countries", PlaceLevel.country), ("regions", PlaceLevel.region),
               ("municipalities", PlaceLevel.municipality))


class PlacesFileError(ValueError):
    """The places file is not valid; ``problems`` lists every one."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class PlacesLoaded:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def load_places(path: str | Path) -> PlacesLoaded:
    """Create or update the places in the YAML file at ``path``; flush. Idempotent.

    Raises :class:`PlacesFileError` (nothing written) when the file is malformed.
    """
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PlacesFileError([f"{path}: {exc}"]) from exc
    entries: list[tuple[str, str, PlaceLevel, str | None]] = []
    problems: list[str] = []
    _walk(document, 0, None, "", entries, problems)
    if problems:
        raise PlacesFileError(problems)
    existing = {p.code: p for p in db.session.scalars(select(Place))}
    result = PlacesLoaded()
    for code, name, level, parent_code in entries:
        parent = existing[parent_code] if parent_code else None
        place = existing.get(code)
        if place is None:
            place = Place(code=code, name=name, level=level, parent=parent)
            db.session.add(place)
            existing[code] = place
            result.created += 1
        elif (place.name, place.level, place.parent) != (name, level, parent):
            place.name, place.level, place.parent = name, level, parent
            result.updated += 1
        else:
            result.unchanged += 1
    db.session.flush()
    return result


def _walk(node, depth: int, parent_code: str | None, where: str, out: list, problems: list[str]) -> None:
    key, level = _CHILD_KEYS[depth]
    if not isinstance(node, dict) or not isinstance(node.get(key, []), list):
        problems.append(f"{where or 'top'}: expected a mapping with a list '{key}'")
        return
    seen = {code for code, *_rest in out}
    for i, item in enumerate(node.get(key) or []):
        here = f"{where}{key}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{here}: expected a mapping with 'code' and 'name'")
            continue
        slug, name = str(item.get("code", "")).strip(), str(item.get("name", "")).strip()
        if not _SLUG.match(slug):
            problems.append(f"{here}.code: {slug!r} is not a slug (a-z, 0-9, '-', '_')")
            continue
        if not name:
            problems.append(f"{here}.name: missing")
        code = f"{parent_code}/{slug}" if parent_code else slug
        if code in seen:
            problems.append(f"{here}.code: {code} appears twice")
        seen.add(code)
        out.append((code, name, level, parent_code))
        child_key = _CHILD_KEYS[depth + 1][0] if depth + 1 < len(_CHILD_KEYS) else None
        if child_key and item.get(child_key) is not None:
            _walk(item, depth + 1, code, f"{here}.", out, problems)
        extra = set(item) - {"code", "name"} - ({child_key} if child_key else set())
        if extra:
            problems.append(f"{here}: unknown keys {', '.join(sorted(extra))}")


def get_place(code: str | None) -> Place | None:
    """The place whose full code is ``code``, or None."""
    if not code:
        return None
    return db.session.scalar(select(Place).where(Place.code == code))


def lineage_codes(code: str | None) -> list[str]:
    """``code`` and the codes of its ancestors, nearest first (from the database if known)."""
    if not code:
        return []
    place = get_place(code)
    if place is not None:
        return [p.code for p in [place, *place.ancestors]]
    parts = code.split("/")
    return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]


def all_places() -> list[Place]:
    """Every place, ordered by code (parents are loaded with them, so labels cost no query)."""
    return list(db.session.scalars(select(Place).order_by(Place.code)))


def place_choices(levels: tuple[PlaceLevel, ...] = (PlaceLevel.region, PlaceLevel.municipality),
                  ) -> list[tuple[str, str]]:
    """``(code, label)`` of the places at ``levels``, sorted by label ("Maracaibo, Zulia, ...")."""
    return sorted(((p.code, p.label) for p in all_places() if p.level in levels),
                  key=lambda pair: pair[1].casefold())
