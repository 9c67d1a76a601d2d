"""The records plugin's part of a user's data export: the records of every pet the user is a member of."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server.db import Executor, column
from server.plugins.records.services import Record, row

PAGE = 500  # rows read at a time: a large account is never held whole


async def export_records(db: Executor, user_id: int) -> AsyncIterator[tuple[str, Any]]:
    """('records', Record) for each record of the pets the user may see, in id order."""
    selected = row(db.dialect)
    last = 0
    while True:
        rows = await db.fetch_all(
            f"SELECT {selected} FROM records JOIN pet_members ON pet_members.pet_id = records.pet_id"  # noqa: S608
            " AND pet_members.user_id = %s WHERE records.id > %s ORDER BY records.id LIMIT %s", (user_id, last, PAGE))
        for found in rows:
            record = Record.from_json(column(found[0], str))
            last = record.id
            yield "records", record
        if len(rows) < PAGE:
            break
