"""The households plugin's part of a user's data export: the history entries the user made, the invitations the
user sent and those sent to the user's address once it is verified, as GET /v1/invitations shows them (memberships
are the pets plugin's `pet_members` section)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from server.db import Executor, column
from server.db.pages import keyset
from server.plugins.households.services import history, invitations
from server.services import utcnow


async def export_households(db: Executor, user_id: int) -> AsyncIterator[tuple[str, Any]]:
    """('history', entry with its pet_id), ('invitations_sent', Invitation), ('invitations_received', Invitation)."""
    async for _, pet_id, entry in keyset(db, f"SELECT pet_history.id, pet_id, {history.ROW} FROM pet_history"  # noqa: S608
                                          " WHERE actor_id = %s", (user_id,), order=("pet_history.id",), key=(0,)):
        yield "history", {"pet_id": column(pet_id, int), **dataclasses.asdict(history.decode(column(entry, str)))}
    now = utcnow()
    async for found in keyset(db, f"SELECT invitations.id, {invitations.ROW} FROM {invitations.TABLE}"  # noqa: S608
                                  " WHERE invitations.invited_by = %s", (user_id,), order=("invitations.id",)):
        yield "invitations_sent", invitations.decode(column(found[1], str), now)
    address = await invitations.invited_address(db, user_id)  # none before the address is verified, as listed
    if address is None:
        return
    async for found in keyset(db, f"SELECT invitations.id, {invitations.ROW} FROM {invitations.TABLE}"  # noqa: S608
                                  " WHERE invitations.email = %s", (address,), order=("invitations.id",)):
        yield "invitations_received", invitations.decode(column(found[1], str), now)
