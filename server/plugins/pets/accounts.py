"""What the pets plugin does when an account is deleted: before the user's row goes (and with it, through the
foreign keys, the pets it owns and its memberships), tell app.changes of each pet deleted and each membership
ended, in the same transaction, so that sync gives the other members of those pets the change."""

from __future__ import annotations

from server.changes import Change, Changes
from server.db import Executor, column


async def account_deleted(changes: Changes, tx: Executor, change: Change) -> None:
    """Listener: on ('account', 'deleted'), emit ('pet', 'deleted') per owned pet and ('member', 'left' or
    'removed') per pet shared with the account."""
    if (change.type, change.action) != ("account", "deleted"):
        return
    user_id, actor_id = change.object_id, change.actor_id
    for (pet_id,) in await tx.fetch_all("SELECT id FROM pets WHERE owner_id = %s ORDER BY id", (user_id,)):
        await changes.emit(tx, Change("pet", "deleted", column(pet_id, int), actor_id, column(pet_id, int)))
    action = "left" if actor_id == user_id else "removed"
    for pet_id, role in await tx.fetch_all("SELECT pet_id, role FROM pet_members WHERE user_id = %s"
                                           " AND role <> 'owner' ORDER BY pet_id", (user_id,)):
        await changes.emit(tx, Change("member", action, user_id, actor_id, column(pet_id, int),
                                      {"role": (column(role, str), None)}))  # as a leave or removal by hand
