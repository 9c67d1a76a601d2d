"""The reminders plugin's part of a user's data export: the open due items of the user's pets, and whether the
user has a calendar feed (when it was made; never its token, which is kept only hashed and would open the feed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server.db import Executor, column, datetime_column
from server.db.pages import keyset
from server.plugins.records.services import row
from server.plugins.reminders.services import decoder, member_records, utc_today


async def export_reminders(db: Executor, user_id: int) -> AsyncIterator[tuple[str, Any]]:
    """('reminders', Reminder) for each open due item, in record id order, then ('calendar_feeds', {...})."""
    decode = decoder(utc_today())
    source, args = member_records(user_id, db.dialect)
    async for found in keyset(db, f"SELECT records.id, {row(db.dialect, 'pets.name')} FROM {source}"  # noqa: S608
                                  " WHERE records.due_date IS NOT NULL AND records.completed_at IS NULL", args,
                              order=("records.id",)):
        yield "reminders", decode(column(found[1], str))
    feed = await db.fetch_one("SELECT created_at FROM calendar_feeds WHERE user_id = %s", (user_id,))
    if feed is not None:
        yield "calendar_feeds", {"created_at": datetime_column(feed[0])}
