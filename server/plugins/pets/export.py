"""The pets plugin's part of a user's data export: every pet the user is a member of (with their role) and the
memberships of those pets that concern them (their own, and everyone they share their own pets with)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server.db import Executor, column
from server.plugins.pets.pet import MEMBER_ROW, Pet

PAGE = 500  # rows read at a time: a large account is never held whole


async def export_pets(db: Executor, user_id: int) -> AsyncIterator[tuple[str, Any]]:
    """('pets', Pet) for every pet the user owns or shares, then ('pet_members', {...}) for the memberships."""
    last = 0
    while True:
        rows = await db.fetch_all(
            f"SELECT {MEMBER_ROW} FROM pets JOIN pet_members ON pet_members.pet_id = pets.id"  # noqa: S608
            " AND pet_members.user_id = %s WHERE pets.id > %s ORDER BY pets.id LIMIT %s", (user_id, last, PAGE))
        for row in rows:
            pet = Pet.from_json(column(row[0], str))
            last = pet.id
            yield "pets", pet
        if len(rows) < PAGE:
            break
    last_pet, last_user = 0, 0
    while True:
        rows = await db.fetch_all(
            "SELECT m.pet_id, m.user_id, m.role, m.since FROM pet_members m JOIN pet_members mine"
            " ON mine.pet_id = m.pet_id AND mine.user_id = %s WHERE (m.user_id = %s OR mine.role = 'owner')"
            " AND (m.pet_id > %s OR (m.pet_id = %s AND m.user_id > %s)) ORDER BY m.pet_id, m.user_id LIMIT %s",
            (user_id, user_id, last_pet, last_pet, last_user, PAGE))
        for pet_id, member_id, role, since in rows:
            last_pet, last_user = column(pet_id, int), column(member_id, int)
            yield "pet_members", {"pet_id": last_pet, "user_id": last_user, "role": role, "since": since}
        if len(rows) < PAGE:
            break
