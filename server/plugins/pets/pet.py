"""A pet as the API shows it: its row selected as one JSON array, its ETag and the If-Match and If-None-Match
condition."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import WithJsonSchema

from server.plugins.pets.models import Sex, Species, Status
from server.preconditions import ENTITY_TAG_RE
from server.services import json_row

COLUMNS = "id, owner_id, name, species, breed, sex, birth_date, status, created_at, updated_at, version"
ROW = json_row(COLUMNS)
MEMBER_COLUMNS = f"{COLUMNS}, pet_members.role"  # over access.member_join: with the caller's role
MEMBER_ROW = json_row(MEMBER_COLUMNS)
VERSION_TAG_RE = re.compile(r"v([1-9][0-9]{0,9})")  # what etag_of writes inside the quotes, and nothing else
PHOTO_SCHEMA = {"anyOf": [{"type": "object"}, {"type": "null"}],
                "description": "the pet's photo as GET/PUT /v1/pets/{pet_id}/photo describe it (etag, content_type, "
                               "width, height, sizes, updated_at), or null (none, or the photos plugin is off)"}


@dataclass(slots=True)
class Pet:
    id: int
    owner_id: int
    name: str
    species: Species
    breed: str | None
    sex: Sex
    birth_date: dt.date | None
    status: Status
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    role: str | None = None  # the caller's role on it (None: a pets:admin caller who is not a member)
    photo: Annotated[Any, WithJsonSchema(PHOTO_SCHEMA)] = None  # filled by the photos plugin (views.PetViews)

    @classmethod
    def from_json(cls, text: str) -> Pet:
        """A pet from the JSON array that ROW or MEMBER_ROW selects."""
        return cls.from_values(orjson.loads(text))

    @classmethod
    def from_values(cls, r: list[Any]) -> Pet:
        """A pet from the values of that array (what plugins add follows them: views.PetViews)."""
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else dt.date.fromisoformat(r[6]), r[7],
                   dt.datetime.fromisoformat(r[8]), dt.datetime.fromisoformat(r[9]), r[10],
                   r[11] if len(r) > 11 else None)

    @property
    def etag(self) -> str:
        return etag_of(self.version)

    def fields(self) -> dict[str, object]:
        """The writable fields and their values (what an update compares)."""
        return {"name": self.name, "species": self.species, "breed": self.breed, "sex": self.sex,
                "birth_date": self.birth_date, "status": self.status}


def search_key(text: str) -> str:
    """A name as pets.name_key stores it, and `q` as it is matched against that (one function for both, on both
    databases): NFKC (a composed and a decomposed 'é' are one text, fullwidth and ligature letters their plain
    ones), then Unicode full case folding, which is context-free so a part of a name folds as it does inside the
    name (Σ, σ and final ς all fold to σ, ẞ and ß to ss, İ to i̇; str.lower's final sigma depends on what follows),
    then NFKC again as folding may undo it (Unicode's NFKC_Casefold). Accents stay: 'e' never finds 'é'."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def etag_of(version: int) -> str:
    """The ETag of a row's version (what version_condition reads back from If-Match); records use it too."""
    return f'"v{version}"'


def page_etag(pets: Sequence[Pet], page: dict[str, Any]) -> str:
    """A page of pets' ETag from its data, known before the body is encoded: the page object (total, next cursor)
    and per pet its id, version (any field, its photo), the caller's role (changed without a new version) and its
    photo's tag. The same on every worker and instance."""
    listed = [(p.id, p.version, p.role, getattr(p.photo, "etag", None)) for p in pets]
    return '"p' + hashlib.blake2b(orjson.dumps([page, listed]), digest_size=12).hexdigest() + '"'


def version_condition(if_match: str | None, if_none_match: str | None = None) -> tuple[str, list[int]]:
    """The SQL condition a write's If-Match and If-None-Match headers add, one for both (RFC 9110 13.1.1, 13.1.2):
    none when both are absent. If-Match: '*' matches any version; otherwise the row must be at a version one of
    its tags names, compared strongly (a weak W/"v1" never matches) and character for character with the tag
    etag_of sends ("v01" names no version), so a stale, garbled or empty one is never true (412 for a visible
    row, still 404 for anyone else's). If-None-Match: '*' is never true for a row that exists; otherwise the row
    must not be at a version one of its tags names, compared weakly (W/"v1" names version 1, as for a GET)."""
    condition, versions = "", list[int]()
    if if_match is not None and if_match.strip() != "*":
        versions = _versions(if_match, weak=False)
        if not versions:
            return " AND 1 = 0", []
        condition = f" AND version IN ({', '.join(['%s'] * len(versions))})"
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return " AND 1 = 0", []
        excluded = _versions(if_none_match, weak=True)
        if excluded:
            condition += f" AND version NOT IN ({', '.join(['%s'] * len(excluded))})"
            versions = versions + excluded
    return condition, versions


def _versions(header: str, *, weak: bool) -> list[int]:
    """The versions a list of entity tags names: each a tag etag_of would send, to the character; weak: W/ ones
    too (If-None-Match's weak comparison), else they name none (If-Match's strong one)."""
    return [int(found[1]) for is_weak, opaque in ENTITY_TAG_RE.findall(header)
            if (weak or not is_weak) and (found := VERSION_TAG_RE.fullmatch(opaque))]
