"""The pets plugin's part of a user's data export: every pet the user is a member of (with their role) and the
memberships of those pets that concern them (their own, and everyone they share their own pets with)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server.db import Executor, column, datetime_column
from server.db.pages import keyset
from server.plugins.pets.pet import MEMBER_ROW, Pet


async def export_pets(db: Executor, user_id: int) -> AsyncIterator[tuple[str, Any]]:
    """('pets', Pet) for every pet the user owns or shares, then ('pet_members', {...}) for the memberships."""
    async for row in keyset(db, f"SELECT pets.id, {MEMBER_ROW} FROM pets JOIN pet_members"  # noqa: S608
                                " ON pet_members.pet_id = pets.id WHERE pet_members.user_id = %s", (user_id,),
                            order=("pets.id",)):
        yield "pets", Pet.from_json(column(row[1], str))
    async for pet_id, member_id, role, since in keyset(
            db, "SELECT m.pet_id, m.user_id, m.role, m.since FROM pet_members m JOIN pet_members mine"
                " ON mine.pet_id = m.pet_id AND mine.user_id = %s WHERE (m.user_id = %s OR mine.role = 'owner')",
            (user_id, user_id), order=("m.pet_id", "m.user_id")):
        yield "pet_members", {"pet_id": column(pet_id, int), "user_id": column(member_id, int), "role": role,
                              "since": datetime_column(since)}
