"""Pets: CRUD and optimistic concurrency; who may do what is the access rule's (access.py), and every write
tells app.changes in its own transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from functools import cache

from server.auth import Principal
from server.changes import Change, Changes, changed_fields
from server.db import Dialect, Executor, Value, column
from server.errors import PreconditionFailed
from server.plugins.pets.access import find_pet, member_join
from server.plugins.pets.models import PetCreate, PetListQuery
from server.plugins.pets.pet import Pet, search_key, version_condition
from server.plugins.pets.views import PetViews
from server.services import Found, Key, Sort, fetch_page, utcnow

__all__ = ["Pet", "backfill_name_keys", "bump_version", "create_pet", "delete_pet", "find_pet", "list_pets",
           "next_version", "update_pet", "version_condition"]


async def create_pet(db: Executor, changes: Changes, *, owner_id: int, fields: PetCreate) -> Pet:
    """Insert a pet and its owner's membership, in one transaction."""

    async def write(tx: Executor) -> Pet:  # replayed whole if the server rolls it back
        now = utcnow()
        result = await tx.execute(
            "INSERT INTO pets (owner_id, name, name_key, species, breed, sex, birth_date, status, created_at,"
            " updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1)",
            (owner_id, fields.name, search_key(fields.name), fields.species, fields.breed, fields.sex,
             fields.birth_date, fields.status, now, now))
        assert result.lastrowid is not None
        await tx.execute_later("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, 'owner', %s)",
                               (result.lastrowid, owner_id, now))
        pet = Pet(result.lastrowid, owner_id, fields.name, fields.species, fields.breed, fields.sex,
                  fields.birth_date, fields.status, now, now, 1, "owner")
        await changes.emit(tx, Change("pet", "created", pet.id, owner_id, pet.id, data=pet))
        return pet

    return await db.run_transaction(write)


async def list_pets(db: Executor, *, user: Principal, query: PetListQuery, views: PetViews) -> Found[Pet]:
    """A filtered, sorted page of the pets the caller may see (owned and shared, each with the caller's role and
    what plugins add), and the total, in one statement."""
    source, join_args = member_join(user, db.dialect)
    where, args = "1 = 1", tuple[object, ...](join_args)
    for name in ("owner_id", "species", "status", "role"):
        value = getattr(query, name)
        if value is not None:
            where += f" AND {name} = %s"
            args += (value,)
    if query.q is not None:
        # Folded in Python on both sides (pet.search_key; name_key compares bytes on MariaDB, so 'e' is not 'ë').
        where += " AND name_key LIKE %s ESCAPE '!'"
        args += ("%" + re.sub(r"([!%_])", r"!\1", search_key(query.q)) + "%",)
    # The join's argument comes first in both the total's subquery and the page's query.
    return await fetch_page(db, row=views.row, table=source, where=where, args=args,
                            sort=_sorts(db.dialect)[query.sort], sort_name=query.sort, limit=query.limit,
                            offset=query.offset, cursor=query.cursor, count=query.include_total, decode=views.decode)


@cache
def _sorts(dialect: Dialect) -> dict[str, Sort]:
    """The order of each `sort` value, the id last (so it is unique: a cursor names one place); names sort as
    MariaDB's utf8mb4_unicode_ci has them (case and accents ignored) on both databases."""
    pet_id = Key("pets.id", "id", int)
    name = Key(dialect.ordered_text("name"), "name", str, dialect.ordered_text("%s"))
    created = Key("pets.created_at", "created_at", dt.datetime)
    return {"id": Sort((pet_id,)), "-id": Sort((pet_id,), descending=True),
            "name": Sort((name, pet_id)), "-name": Sort((name, pet_id), descending=True),
            "created_at": Sort((created, pet_id)), "-created_at": Sort((created, pet_id), descending=True)}


async def update_pet(db: Executor, changes: Changes, *, pet_id: int, user: Principal, fields: dict[str, Value],
                     if_match: str | None, views: PetViews, if_none_match: str | None = None) -> Pet:
    """Apply fields (caretaker, owner or admin); with If-Match, only when the version is current, with
    If-None-Match only when it is not one named (or '*'), else 412. The pet as its GET answers it afterwards.
    Fields that all hold their current values change nothing: no new version, history entry or sync change, so
    other members' If-Match stays current (the conditions still apply: 412 on a stale one)."""
    condition, versions = version_condition(if_match, if_none_match)
    columns = {**fields, "name_key": search_key(str(fields["name"]))} if "name" in fields else fields
    assignments = "".join(f"{name} = %s, " for name in columns)

    async def write(tx: Executor) -> Pet:  # replayed whole if the server rolls it back
        before = await find_pet(tx, pet_id=pet_id, user=user, need="write", lock=True, views=views)
        changed = changed_fields(before.fields(), fields)
        if not changed:  # a read instead of the UPDATE, and only when there are conditions to check
            if condition and await tx.fetch_one(f"SELECT id FROM pets WHERE id = %s{condition}",  # noqa: S608
                                                (pet_id, *versions)) is None:
                raise PreconditionFailed()
            return before
        now = utcnow()
        result = await tx.execute(
            f"UPDATE pets SET {assignments}version = version + 1, updated_at = %s"  # noqa: S608
            f" WHERE id = %s{condition}", (*columns.values(), now, pet_id, *versions))
        if result.rowcount == 0:
            raise PreconditionFailed()
        # The row is locked since it was read: what it holds now is known without reading it again.
        after = dataclasses.replace(before, **fields, version=before.version + 1, updated_at=now)  # type: ignore[arg-type]
        await changes.emit(tx, Change("pet", "updated", pet_id, user.user_id, pet_id, changed, after))
        return after

    return await db.run_transaction(write)


async def next_version(tx: Executor, *, pet_id: int) -> None:
    """A new version of the pet (and updated_at) when something its representation carries changes elsewhere (its
    photo, a member's role): its ETag, If-Match and the sync log follow the one version. In the caller's
    transaction, which tells the change; the pet's row stays locked until it ends. Sent with the next statement."""
    await tx.execute_later("UPDATE pets SET version = version + 1, updated_at = %s WHERE id = %s", (utcnow(), pet_id))


async def bump_version(tx: Executor, *, pet_id: int, user: Principal) -> Pet:
    """next_version, then the pet as the caller now sees it."""
    await next_version(tx, pet_id=pet_id)
    return await find_pet(tx, pet_id=pet_id, user=user)


async def delete_pet(db: Executor, changes: Changes, *, pet_id: int, user: Principal, if_match: str | None,
                     if_none_match: str | None = None) -> None:
    """Delete the pet (its records and memberships go with it): the owner or an admin; 404 when absent, 403 for
    other members, 412 on a stale If-Match or an If-None-Match naming it ('*' included)."""
    condition, versions = version_condition(if_match, if_none_match)

    async def write(tx: Executor) -> None:  # replayed whole if the server rolls it back
        await find_pet(tx, pet_id=pet_id, user=user, need="manage", lock=True)
        await changes.emit(tx, Change("pet", "deleted", pet_id, user.user_id, pet_id))  # members still readable
        result = await tx.execute(f"DELETE FROM pets WHERE id = %s{condition}", (pet_id, *versions))  # noqa: S608
        if result.rowcount == 0:
            raise PreconditionFailed()  # rolls back the change's rows too

    await db.run_transaction(write)


async def backfill_name_keys(db: Executor, *, batch: int = 300) -> int:
    """Give every pet without one its name_key (rows from before pets 0004, or written meanwhile by an older
    instance: until then `q` does not find them), one UPDATE per page of 300 (900 parameters, under SQLite's oldest
    limit of 999); how many were set. A pet keyed meanwhile by a write is left as that write set it."""
    done, after = 0, 0
    while rows := await db.fetch_all("SELECT id, name FROM pets WHERE name_key IS NULL AND id > %s ORDER BY id"
                                     " LIMIT %s", (after, batch)):
        keys = [(column(row[0], int), search_key(column(row[1], str))) for row in rows]
        whens = " ".join(["WHEN %s THEN %s"] * len(keys))
        result = await db.execute(f"UPDATE pets SET name_key = CASE id {whens} END"  # noqa: S608
                                  f" WHERE id IN ({', '.join(['%s'] * len(keys))}) AND name_key IS NULL",
                                  (*(v for pair in keys for v in pair), *(pet_id for pet_id, _ in keys)))
        done, after = done + result.rowcount, keys[-1][0]
    return done
