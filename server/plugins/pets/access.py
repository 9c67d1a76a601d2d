"""The access rule, written once: what a caller may do with a pet. Every route of every plugin that touches a pet
or anything under it (records, members, reminders, the calendar, photos, sync) asks find_pet or member_join.

A caller's role on a pet is its row in pet_members: owner (exactly one: shares, changes roles, transfers, deletes),
caretaker (reads and writes the pet and what is under it), viewer (reads). With no role the pet does not exist for
the caller (404, never a hint that it does); a role that does not allow the action is 403. pets:admin may do
everything. The membership is read on every request, so losing it takes effect on the next one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from server.auth import Principal
from server.db import Dialect, Executor, column
from server.errors import Forbidden, NotFound
from server.plugins.pets.models import Role
from server.plugins.pets.pet import MEMBER_ROW, Pet

if TYPE_CHECKING:
    from server.plugins.pets.views import PetViews

Need = Literal["read", "write", "manage"]
ROLES: tuple[Role, ...] = get_args(Role)
ALLOWED: dict[Need, frozenset[str]] = {
    "read": frozenset(ROLES),
    "write": frozenset({"owner", "caretaker"}),
    "manage": frozenset({"owner"}),
}


def role_refusal(need: Need, *, but: str = "") -> dict[int, str]:
    """The 403 an operation documents (its `why`) when its service asks find_pet(need=...): the scope, or a role
    ALLOWED does not give (the same table the rule reads, so the document cannot drift from it); `but`: who else
    may (a member leaving)."""
    roles = " or ".join(f"`{role}`" for role in ROLES if role in ALLOWED[need])
    return {403: "Forbidden (1004): the token lacks a required scope, or the caller's role on the pet does not allow "
                 f"this: only {roles} may (and pets:admin callers, with or without a role{'; ' + but if but else ''})"}


def member_join(user: Principal | int, dialect: Dialect) -> tuple[str, tuple[int]]:
    """FROM pets joined to the caller's membership (pet_members.role is theirs): only their pets, or for
    pets:admin every pet (role NULL where they are not a member). A bare user id: that user's memberships only,
    pets:admin or not (what is personal: reminders, a calendar feed). The argument goes before the WHERE's.

    A member's pets are read from their memberships, each pet then by its key, whatever the optimizer estimates:
    what a member's list costs grows with their own pets, never with the deployment's. Left to itself, MariaDB
    counted a member's pets of one status from every pet of that status in a small deployment, probing all the
    caller's memberships for each one (bench growth: its list_status)."""
    if not isinstance(user, int) and user.is_pets_admin:
        return ("pets LEFT JOIN pet_members ON pet_members.pet_id = pets.id AND pet_members.user_id = %s",
                (user.user_id,))
    user_id = user if isinstance(user, int) else user.user_id
    return (f"pet_members {dialect.join_in_order} pets{dialect.by_key} ON pets.id = pet_members.pet_id"
            " AND pet_members.user_id = %s", (user_id,))


def allows(role: str | None, need: Need) -> bool:
    """Whether a member with this role may do what `need` names."""
    return role is not None and role in ALLOWED[need]


async def find_pet(db: Executor, *, pet_id: int, user: Principal, need: Need = "read", lock: bool = False,
                   views: PetViews | None = None) -> Pet:
    """The pet, with the caller's role on it, if the caller may `need` it: 404 with no role (exactly as if it did
    not exist), 403 when the role does not allow it. lock: hold the pet's row until the transaction ends. views:
    the pet as its GET answers it (what plugins add, in the same statement)."""
    source, args = member_join(user, db.dialect)
    suffix = db.dialect.for_update if lock else ""
    row = await db.fetch_one(f"SELECT {MEMBER_ROW if views is None else views.row} FROM {source}"  # noqa: S608
                             f" WHERE pets.id = %s{suffix}", (*args, pet_id))
    if row is None:
        raise NotFound()
    text = column(row[0], str)
    pet = Pet.from_json(text) if views is None else views.decode(text)
    if not user.is_pets_admin and not allows(pet.role, need):
        if pet.role is None:
            raise NotFound()
        raise Forbidden(f"a {pet.role} of this pet may not do this")
    return pet
