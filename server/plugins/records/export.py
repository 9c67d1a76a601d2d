"""The records plugin's part of a user's data export: the records of every pet the user is a member of."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server.db import Executor, column
from server.db.pages import keyset
from server.plugins.records.services import Record, row


async def export_records(db: Executor, user_id: int) -> AsyncIterator[tuple[str, Any]]:
    """('records', Record) for each record of the pets the user may see, in id order."""
    async for found in keyset(db, f"SELECT records.id, {row(db.dialect)} FROM records JOIN pet_members"  # noqa: S608
                                  " ON pet_members.pet_id = records.pet_id WHERE pet_members.user_id = %s",
                              (user_id,), order=("records.id",)):
        yield "records", Record.from_json(column(found[1], str))
