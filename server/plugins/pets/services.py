"""Pets: the ownership rule (written once), CRUD and optimistic concurrency."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache

import orjson

from server.auth import Principal
from server.db import Dialect, Executor, Value, column
from server.errors import NotFound, PreconditionFailed
from server.plugins.pets.models import PetCreate, PetListQuery, Sex, Species, Status
from server.services import fetch_page, json_row, utcnow

COLUMNS = "id, owner_id, name, species, breed, sex, birth_date, status, created_at, updated_at, version"
ROW = json_row(COLUMNS)
ETAG_RE = re.compile(r'(?:W/)?"v(\d{1,10})"')


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

    @classmethod
    def from_json(cls, text: str) -> Pet:
        """A pet from the JSON array that ROW selects."""
        r = orjson.loads(text)
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else dt.date.fromisoformat(r[6]), r[7],
                   dt.datetime.fromisoformat(r[8]), dt.datetime.fromisoformat(r[9]), r[10])

    @property
    def etag(self) -> str:
        return f'"v{self.version}"'


def owner_scope(user: Principal, column: str = "owner_id") -> tuple[str, tuple[int, ...]]:
    """The ownership rule: a caller sees their own pets; pets:admin sees all."""
    if user.is_pets_admin:
        return "", ()
    return f" AND {column} = %s", (user.user_id,)


def version_condition(if_match: str | None) -> tuple[str, list[int]]:
    """The SQL condition an If-Match header adds: none when absent or '*'; never true when none of the
    tags is one of ours, garbled ones included (so any other value is 412 for a visible pet and still
    404 for anyone else's)."""
    if if_match is None or if_match.strip() == "*":
        return "", []
    versions = [int(v) for v in ETAG_RE.findall(if_match)]
    if not versions:
        return " AND 1 = 0", []
    return f" AND version IN ({', '.join(['%s'] * len(versions))})", versions


async def get_owned_pet(db: Executor, *, pet_id: int, user: Principal) -> Pet:
    """The pet if the caller may see it; otherwise 404, exactly as if it did not exist."""
    scope, args = owner_scope(user)
    row = await db.fetch_one(f"SELECT {ROW} FROM pets WHERE id = %s{scope}", (pet_id, *args))  # noqa: S608
    if row is None:
        raise NotFound()
    return Pet.from_json(column(row[0], str))


async def create_pet(db: Executor, *, owner_id: int, fields: PetCreate) -> Pet:
    """Insert a pet owned by owner_id."""
    now = utcnow()
    result = await db.execute(
        "INSERT INTO pets (owner_id, name, species, breed, sex, birth_date, status, created_at, updated_at, version)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1)",
        (owner_id, fields.name, fields.species, fields.breed, fields.sex, fields.birth_date, fields.status, now, now))
    assert result.lastrowid is not None
    return Pet(result.lastrowid, owner_id, fields.name, fields.species, fields.breed, fields.sex, fields.birth_date,
               fields.status, now, now, 1)


async def list_pets(db: Executor, *, user: Principal, query: PetListQuery) -> tuple[list[Pet], int]:
    """A filtered, sorted page of the pets the caller may see, and the total."""
    scope, owner = owner_scope(user)
    where = "1 = 1" + scope
    args: tuple[object, ...] = owner
    for name in ("owner_id", "species", "status"):
        value = getattr(query, name)
        if value is not None:
            where += f" AND {name} = %s"
            args += (value,)
    if query.q is not None:
        # Case-insensitive, but exact otherwise: MariaDB's column collation would also equate 'e' and 'ë'.
        where += f" AND LOWER(name){db.dialect.exact} LIKE %s ESCAPE '!'"
        args += ("%" + re.sub(r"([!%_])", r"!\1", query.q.lower()) + "%",)
    return await fetch_page(db, row=ROW, table="pets", where=where, args=args, order=_sorts(db.dialect)[query.sort],
                            limit=query.limit, offset=query.offset, decode=Pet.from_json)


@cache
def _sorts(dialect: Dialect) -> dict[str, str]:
    """ORDER BY for each `sort` value; names sort case-insensitively on every database."""
    name = f"name{dialect.nocase}"
    return {"id": "id", "-id": "id DESC", "name": f"{name}, id", "-name": f"{name} DESC, id DESC",
            "created_at": "created_at, id", "-created_at": "created_at DESC, id DESC"}


async def update_pet(db: Executor, *, pet_id: int, user: Principal, fields: dict[str, Value],
                     if_match: str | None) -> Pet:
    """Apply fields; with If-Match, only when the version is current (one atomic UPDATE), else 412."""
    scope, args = owner_scope(user)
    condition, versions = version_condition(if_match)
    assignments = "".join(f"{name} = %s, " for name in fields)
    async with db.transaction() as tx:
        result = await tx.execute(
            f"UPDATE pets SET {assignments}version = version + 1, updated_at = %s"  # noqa: S608
            f" WHERE id = %s{scope}{condition}", (*fields.values(), utcnow(), pet_id, *args, *versions))
        pet = await get_owned_pet(tx, pet_id=pet_id, user=user)
    if result.rowcount == 0:
        raise PreconditionFailed()
    return pet


async def delete_pet(db: Executor, *, pet_id: int, user: Principal, if_match: str | None) -> None:
    """Delete the pet (its records go with it); 404 when absent, 412 on a stale If-Match."""
    scope, args = owner_scope(user)
    condition, versions = version_condition(if_match)
    result = await db.execute(f"DELETE FROM pets WHERE id = %s{scope}{condition}",  # noqa: S608
                              (pet_id, *args, *versions))
    if result.rowcount == 0:
        await get_owned_pet(db, pet_id=pet_id, user=user)  # 404 when it is not there
        raise PreconditionFailed()
