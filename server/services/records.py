"""Health records of a pet; the pet's ownership rule guards them (see get_owned_pet)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from server.db import Executor, IntegrityViolation
from server.errors import NotFound
from server.schemas.pets import RecordCreate, RecordKind, RecordListQuery
from server.services import as_date, as_datetime, utcnow

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
    def from_row(cls, r: tuple[Any, ...]) -> Record:
        date = as_date(r[3])
        assert date is not None
        return cls(r[0], r[1], r[2], date, r[4], r[5], as_datetime(r[6]))


async def list_records(db: Executor, *, pet_id: int, query: RecordListQuery) -> tuple[list[Record], int]:
    """A page of the pet's records (newest date first), and the total."""
    where, args = "pet_id = %s", (pet_id,)
    if query.kind is not None:
        where, args = where + " AND kind = %s", (*args, query.kind)
    rows = await db.fetch_all(
        f"SELECT {COLUMNS}, COUNT(*) OVER () FROM records WHERE {where}"  # noqa: S608
        " ORDER BY date DESC, id DESC LIMIT %s OFFSET %s", (*args, query.limit, query.offset))
    if rows:
        return [Record.from_row(r) for r in rows], int(rows[0][7])
    if query.offset == 0:
        return [], 0
    total = await db.fetch_one(f"SELECT COUNT(*) FROM records WHERE {where}", args)  # noqa: S608
    return [], int(total[0]) if total else 0


async def create_record(db: Executor, *, pet_id: int, fields: RecordCreate) -> Record:
    """Insert a record under the pet (404 if the pet vanished meanwhile)."""
    now = utcnow()
    try:
        result = await db.execute(
            "INSERT INTO records (pet_id, kind, date, note, value, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (pet_id, fields.kind, fields.date, fields.note, fields.value, now))
    except IntegrityViolation:
        raise NotFound() from None
    assert result.lastrowid is not None
    return Record(result.lastrowid, pet_id, fields.kind, fields.date, fields.note, fields.value, now)


async def get_record(db: Executor, *, pet_id: int, record_id: int) -> Record:
    """The record of that pet, or 404."""
    row = await db.fetch_one(f"SELECT {COLUMNS} FROM records WHERE id = %s AND pet_id = %s",  # noqa: S608
                             (record_id, pet_id))
    if row is None:
        raise NotFound()
    return Record.from_row(row)


async def delete_record(db: Executor, *, pet_id: int, record_id: int) -> None:
    """Delete the record of that pet, or 404."""
    result = await db.execute("DELETE FROM records WHERE id = %s AND pet_id = %s", (record_id, pet_id))
    if result.rowcount == 0:
        raise NotFound()
