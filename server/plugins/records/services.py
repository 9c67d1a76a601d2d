"""Health records of a pet; the pet's access rule guards them (find_pet, asked by the handlers or inside the
write), and every write tells app.changes in its own transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from server.auth import Principal
from server.changes import Change, Changes, changed_fields
from server.db import Dialect, Executor, IntegrityViolation, Value, column
from server.errors import NotFound, PreconditionFailed
from server.plugins.pets.access import find_pet
from server.plugins.pets.pet import etag_of, version_condition
from server.plugins.records.models import RecordCreate, RecordKind, RecordListQuery
from server.services import Found, Key, Sort, fetch_page, json_row, utcnow

# Qualified, so the same row() serves queries joining pets (reminders); a record written by the release
# before due dates has no updated_at: it was last changed when created.
COLUMNS = ("records.id", "records.pet_id", "records.kind", "records.date", "records.note", "records.value",
           "records.due_date", "records.completed_at", "records.created_at",
           "COALESCE(records.updated_at, records.created_at)", "records.version")


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _datetime(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


@dataclass(slots=True)
class Record:
    id: int
    pet_id: int
    kind: RecordKind
    date: dt.date
    note: str | None
    value: float | None
    due_date: dt.date | None
    completed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int

    @classmethod
    def from_list(cls, r: list[Any]) -> Record:
        """A record from the decoded JSON array that row() selects (value as JSON number or, from SQLite, text)."""
        return cls(r[0], r[1], r[2], dt.date.fromisoformat(r[3]), r[4], None if r[5] is None else float(r[5]),
                   _date(r[6]), _datetime(r[7]), dt.datetime.fromisoformat(r[8]), dt.datetime.fromisoformat(r[9]),
                   r[10])

    @classmethod
    def from_json(cls, text: str) -> Record:
        """A record from the JSON array that row() selects."""
        return cls.from_list(orjson.loads(text))

    @property
    def etag(self) -> str:
        return etag_of(self.version)

    def fields(self) -> dict[str, object]:
        """The fields a PATCH may change and their values (what an update compares)."""
        return {"note": self.note, "value": self.value, "due_date": self.due_date, "completed_at": self.completed_at}


@cache
def row(dialect: Dialect, *extra: str) -> str:
    """The record's columns (then `extra` ones) as one JSON array; the DOUBLE keeps every digit on both
    databases."""
    return json_row(", ".join([dialect.real(c) if c == "records.value" else c for c in COLUMNS] + list(extra)))


BY_DATE = Sort((Key("records.date", "date", dt.date), Key("records.id", "id", int)), descending=True)


async def list_records(db: Executor, *, pet_id: int, query: RecordListQuery) -> Found[Record]:
    """A page of the pet's records (newest date first), and the total."""
    where = "records.pet_id = %s"
    args: tuple[object, ...] = (pet_id,)
    if query.kind is not None:
        where, args = where + " AND records.kind = %s", (pet_id, query.kind)
    return await fetch_page(db, row=row(db.dialect), table="records", where=where, args=args, sort=BY_DATE,
                            sort_name="-date", limit=query.limit, offset=query.offset, cursor=query.cursor,
                            decode=Record.from_json)


async def create_record(db: Executor, changes: Changes, *, pet_id: int, actor_id: int,
                        fields: RecordCreate) -> Record:
    """Insert a record under the pet (404 if the pet vanished meanwhile), noting the pet's version in the same
    statement: the record's calendar event counts only the pet's revisions after it (a new event starts at
    SEQUENCE 0)."""

    async def write(tx: Executor) -> Record:  # replayed whole if the server rolls it back
        now = utcnow()
        try:
            result = await tx.execute(
                "INSERT INTO records (pet_id, kind, date, note, value, due_date, created_at, updated_at, version,"
                " pet_version_at_creation) SELECT id, %s, %s, %s, %s, %s, %s, %s, 1, version FROM pets WHERE id = %s",
                (fields.kind, fields.date, fields.note, fields.value, fields.due_date, now, now, pet_id))
        except IntegrityViolation:
            raise NotFound() from None
        if result.rowcount == 0:  # no such pet: nothing selected, nothing inserted
            raise NotFound()
        assert result.lastrowid is not None
        record = Record(result.lastrowid, pet_id, fields.kind, fields.date, fields.note, fields.value,
                        fields.due_date, None, now, now, 1)
        await changes.emit(tx, Change("record", "created", record.id, actor_id, pet_id, data=record))
        return record

    return await db.run_transaction(write)


async def get_record(db: Executor, *, pet_id: int, record_id: int, lock: bool = False) -> Record:
    """The record of that pet, or 404. lock: hold its row until the transaction ends."""
    suffix = db.dialect.for_update if lock else ""
    found = await db.fetch_one(
        f"SELECT {row(db.dialect)} FROM records WHERE records.id = %s AND records.pet_id = %s{suffix}",  # noqa: S608
        (record_id, pet_id))
    if found is None:
        raise NotFound()
    return Record.from_json(column(found[0], str))


async def update_record(db: Executor, changes: Changes, *, pet_id: int, record_id: int, user: Principal,
                        fields: dict[str, Value], if_match: str | None, if_none_match: str | None = None) -> Record:
    """Apply fields to the pet's record (the pet's caretakers, owner or an admin; 404 when absent); with If-Match
    only when the record's version is current, with If-None-Match only when it is not one named (or '*'), else
    412 and nothing written."""
    condition, versions = version_condition(if_match, if_none_match)
    assignments = "".join(f"{name} = %s, " for name in fields)

    async def write(tx: Executor) -> Record:  # replayed whole if the server rolls it back
        await find_pet(tx, pet_id=pet_id, user=user, need="write")
        before = await get_record(tx, pet_id=pet_id, record_id=record_id, lock=True)
        result = await tx.execute(
            f"UPDATE records SET {assignments}version = version + 1, updated_at = %s"  # noqa: S608
            f" WHERE id = %s AND pet_id = %s{condition}", (*fields.values(), utcnow(), record_id, pet_id, *versions))
        if result.rowcount == 0:
            raise PreconditionFailed()
        after = await get_record(tx, pet_id=pet_id, record_id=record_id)
        await changes.emit(tx, Change("record", "updated", record_id, user.user_id, pet_id,
                                      changed_fields(before.fields(), after.fields()), after))
        return after

    return await db.run_transaction(write)


async def delete_record(db: Executor, changes: Changes, *, pet_id: int, record_id: int, actor_id: int,
                        if_match: str | None = None, if_none_match: str | None = None) -> None:
    """Delete the record of that pet, or 404; with If-Match only when its version is current, with If-None-Match
    only when it is not one named (or '*'), else 412 and nothing deleted. Only a refused conditional delete
    reads the record again, to tell 412 from 404."""
    condition, versions = version_condition(if_match, if_none_match)

    async def write(tx: Executor) -> None:  # replayed whole if the server rolls it back
        result = await tx.execute(f"DELETE FROM records WHERE id = %s AND pet_id = %s{condition}",  # noqa: S608
                                  (record_id, pet_id, *versions))
        if result.rowcount == 0:
            if condition:
                await get_record(tx, pet_id=pet_id, record_id=record_id)  # 404 when it is not there
                raise PreconditionFailed()
            raise NotFound()
        await changes.emit(tx, Change("record", "deleted", record_id, actor_id, pet_id))

    await db.run_transaction(write)
