"""Health records of a pet; the pet's access rule guards them (the handlers ask find_pet first), and every
write tells app.changes in its own transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import orjson

from server.changes import Change, Changes
from server.db import Dialect, Executor, IntegrityViolation, column
from server.errors import NotFound
from server.plugins.records.models import RecordCreate, RecordKind, RecordListQuery
from server.services import fetch_page, json_row, utcnow

COLUMNS = "id, pet_id, kind, date, note, value, created_at"


@dataclass(slots=True)
class Record:
    id: int
    pet_id: int
    kind: RecordKind
    date: dt.date
    note: str | None
    value: float | None
    created_at: dt.datetime

    @classmethod
    def from_json(cls, text: str) -> Record:
        """A record from the JSON array that row() selects (value as JSON number or, from SQLite, text)."""
        r = orjson.loads(text)
        return cls(r[0], r[1], r[2], dt.date.fromisoformat(r[3]), r[4], None if r[5] is None else float(r[5]),
                   dt.datetime.fromisoformat(r[6]))


@cache
def row(dialect: Dialect) -> str:
    """The record's columns as one JSON array; the DOUBLE keeps every digit on both databases."""
    return json_row(COLUMNS.replace("value", dialect.real("value")))


async def list_records(db: Executor, *, pet_id: int, query: RecordListQuery) -> tuple[list[Record], int]:
    """A page of the pet's records (newest date first), and the total."""
    where = "pet_id = %s"
    args: tuple[object, ...] = (pet_id,)
    if query.kind is not None:
        where, args = where + " AND kind = %s", (pet_id, query.kind)
    return await fetch_page(db, row=row(db.dialect), table="records", where=where, args=args,
                            order="date DESC, id DESC", limit=query.limit, offset=query.offset,
                            decode=Record.from_json)


async def create_record(db: Executor, changes: Changes, *, pet_id: int, actor_id: int,
                        fields: RecordCreate) -> Record:
    """Insert a record under the pet (404 if the pet vanished meanwhile)."""

    async def write(tx: Executor) -> Record:  # replayed whole if the server rolls it back
        now = utcnow()
        try:
            result = await tx.execute(
                "INSERT INTO records (pet_id, kind, date, note, value, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (pet_id, fields.kind, fields.date, fields.note, fields.value, now))
        except IntegrityViolation:
            raise NotFound() from None
        assert result.lastrowid is not None
        record = Record(result.lastrowid, pet_id, fields.kind, fields.date, fields.note, fields.value, now)
        await changes.emit(tx, Change("record", "created", record.id, actor_id, pet_id, data=record))
        return record

    return await db.run_transaction(write)


async def get_record(db: Executor, *, pet_id: int, record_id: int) -> Record:
    """The record of that pet, or 404."""
    found = await db.fetch_one(f"SELECT {row(db.dialect)} FROM records WHERE id = %s AND pet_id = %s",  # noqa: S608
                               (record_id, pet_id))
    if found is None:
        raise NotFound()
    return Record.from_json(column(found[0], str))


async def delete_record(db: Executor, changes: Changes, *, pet_id: int, record_id: int, actor_id: int) -> None:
    """Delete the record of that pet, or 404."""

    async def write(tx: Executor) -> None:  # replayed whole if the server rolls it back
        result = await tx.execute("DELETE FROM records WHERE id = %s AND pet_id = %s", (record_id, pet_id))
        if result.rowcount == 0:
            raise NotFound()
        await changes.emit(tx, Change("record", "deleted", record_id, actor_id, pet_id))

    await db.run_transaction(write)
