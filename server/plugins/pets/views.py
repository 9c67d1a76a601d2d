"""What other plugins add to the pets' representation (the photos plugin: each pet's `photo`), read in the pet's own
statement: one round trip for a pet or a page of pets, whatever the plugins add."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from server.db import Executor, column
from server.plugins.pets.pet import MEMBER_COLUMNS, MEMBER_ROW, Pet
from server.services import json_row

FIRST = len(MEMBER_COLUMNS.split(","))  # where the added values start in a row's array


@dataclass(frozen=True, slots=True)
class PetColumn:
    """One value a plugin adds to each pet: `sql`, an expression over `pets.id` read from an index (a correlated
    subquery giving a JSON array, or NULL), and `fill(pet, value)` with the value decoded (a list, or None)."""

    sql: str
    fill: Callable[[Pet, Any], None]


class PetViews:
    """The columns plugins add to a pet: selected with the pet itself (find_pet and list_pets given the views), or
    for pets read without them (complete)."""

    def __init__(self) -> None:
        self._columns: list[PetColumn] = []
        self.row = MEMBER_ROW  # over access.member_join: the pet, the caller's role and what plugins add

    def add(self, added: PetColumn) -> None:
        """Select added.sql with every pet answered (a plugin calls it from its on_start)."""
        self._columns.append(added)
        self.row = json_row(", ".join([MEMBER_COLUMNS, *(c.sql for c in self._columns)]))

    def decode(self, text: str) -> Pet:
        """A pet from the array `row` selects, completed."""
        values = orjson.loads(text)
        pet = Pet.from_values(values)
        for i, added in enumerate(self._columns, FIRST):
            self._fill(added, pet, values[i])
        return pet

    async def complete(self, db: Executor, pets: Sequence[Pet]) -> None:
        """Complete pets read without the added columns (a sync page), in one query."""
        if not pets or not self._columns:
            return
        marks = ", ".join(["%s"] * len(pets))
        by_id = {pet.id: pet for pet in pets}
        rows = await db.fetch_all(f"SELECT {json_row(', '.join(['pets.id', *(c.sql for c in self._columns)]))}"  # noqa: S608
                                  f" FROM pets WHERE pets.id IN ({marks})", tuple(by_id))
        for (text,) in rows:
            values = orjson.loads(column(text, str))
            pet = by_id[values[0]]
            for i, added in enumerate(self._columns, 1):
                self._fill(added, pet, values[i])

    @staticmethod
    def _fill(added: PetColumn, pet: Pet, value: Any) -> None:
        # A subquery's JSON arrives nested (MariaDB, SQLite 3.40); a SQLite that drops its JSON subtype sends text.
        added.fill(pet, orjson.loads(value) if isinstance(value, str) else value)
