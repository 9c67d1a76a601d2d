"""Members of a pet: who has which role, role changes, leaving, removal and the transfer of ownership."""

from __future__ import annotations

import datetime as dt

import orjson

from server.auth import Principal
from server.changes import Change, Changes
from server.db import Executor, column
from server.errors import NotFound, PreconditionFailed
from server.plugins.households.errors import AlreadyOwner, NotAMember, OwnerCannotLeave, OwnerRoleFixed
from server.plugins.households.models import Member, PageQuery, SharedRole
from server.plugins.pets.access import find_pet
from server.plugins.pets.pet import Pet, version_condition
from server.plugins.pets.services import next_version
from server.plugins.pets.views import PetViews
from server.services import Found, Key, Sort, fetch_page, json_row, utcnow

ROW = json_row("pet_members.user_id, users.nickname, pet_members.role, pet_members.since")
TABLE = "pet_members JOIN users ON users.id = pet_members.user_id"
NOT_A_MEMBER = "not a member of this pet"


def _decode(text: str) -> Member:
    r = orjson.loads(text)
    return Member(r[0], r[1], r[2], dt.datetime.fromisoformat(r[3]))


OWNER_FIRST = Sort((Key("CASE pet_members.role WHEN 'owner' THEN 0 ELSE 1 END", "role", str,
                        "CASE %s WHEN 'owner' THEN 0 ELSE 1 END"),
                    Key("pet_members.since", "since", dt.datetime), Key("pet_members.user_id", "user_id", int)))


async def list_members(db: Executor, *, pet_id: int, query: PageQuery) -> Found[Member]:
    """The pet's members: the owner first, then by the date they joined (the user id last, so the order is unique);
    the total (unless include_total=false) and the next page's cursor. A cursor holds the last member's role, ranked
    from the parameter as from the column."""
    return await fetch_page(db, row=ROW, table=TABLE, where="pet_members.pet_id = %s", args=(pet_id,),
                            sort=OWNER_FIRST, sort_name="members", limit=query.limit, offset=query.offset,
                            cursor=query.cursor, count=query.include_total, decode=_decode)


async def get_member(db: Executor, *, pet_id: int, user_id: int) -> Member | None:
    """The user's membership of the pet, or None."""
    row = await db.fetch_one(f"SELECT {ROW} FROM {TABLE} WHERE pet_members.pet_id = %s"  # noqa: S608
                             " AND pet_members.user_id = %s", (pet_id, user_id))
    return None if row is None else _decode(column(row[0], str))


async def _target(tx: Executor, pet_id: int, user_id: int) -> Member:
    member = await get_member(tx, pet_id=pet_id, user_id=user_id)
    if member is None:
        raise NotFound(NOT_A_MEMBER)
    return member


async def change_role(db: Executor, changes: Changes, *, user: Principal, pet_id: int, user_id: int,
                      role: SharedRole) -> Member:
    """Give a member another shared role (manage); the owner's role moves only by transfer (409/2304). The pet's
    version moves on, as on a transfer: its representation carries the caller's role, so the member's cached
    ETag ("v<version>") must not answer 304 with the old one."""

    async def write(tx: Executor) -> Member:
        await find_pet(tx, pet_id=pet_id, user=user, need="manage", lock=True)
        member = await _target(tx, pet_id, user_id)
        if member.role == "owner":
            raise OwnerRoleFixed()
        if member.role == role:
            return member  # nothing changed, nothing recorded
        await tx.execute_later("UPDATE pet_members SET role = %s WHERE pet_id = %s AND user_id = %s",
                               (role, pet_id, user_id))
        await next_version(tx, pet_id=pet_id)
        old, member.role = member.role, role
        await changes.emit(tx, Change("member", "role_changed", user_id, user.user_id, pet_id, {"role": (old, role)},
                                      member))
        return member

    return await db.run_transaction(write)


async def remove_member(db: Executor, changes: Changes, *, user: Principal, pet_id: int, user_id: int) -> None:
    """A member leaves (any role may), or the owner (or pets:admin) removes another member; the owner can do
    neither to themselves (409/2305). Access ends with this transaction: every request reads pet_members."""
    leaving = user_id == user.user_id

    async def write(tx: Executor) -> None:
        await find_pet(tx, pet_id=pet_id, user=user, need="read" if leaving else "manage", lock=True)
        member = await _target(tx, pet_id, user_id)
        if member.role == "owner":
            raise OwnerCannotLeave()
        await tx.execute_later("DELETE FROM pet_members WHERE pet_id = %s AND user_id = %s", (pet_id, user_id))
        await changes.emit(tx, Change("member", "left" if leaving else "removed", user_id, user.user_id, pet_id,
                                      {"role": (member.role, None)}))

    await db.run_transaction(write)


async def transfer_pet(db: Executor, changes: Changes, *, user: Principal, pet_id: int, user_id: int,
                       if_match: str | None, views: PetViews, if_none_match: str | None = None) -> Pet:
    """Make a member the owner: they get 'owner', the former owner 'caretaker', pets.owner_id follows and the pet's
    version moves on; one transaction. With If-Match, only when the pet's version is current (with If-None-Match,
    only when it is not one named, or '*'), else 412 and nothing is written (the condition sits in the pet's
    UPDATE: on Galera a row lock on one node does not stop another node's writer). Returns the pet as the caller
    now sees it, as its GET answers it (what plugins add, its photo, included: the same ETag names one body)."""
    condition, versions = version_condition(if_match, if_none_match)

    async def write(tx: Executor) -> Pet:
        pet = await find_pet(tx, pet_id=pet_id, user=user, need="manage", lock=True)
        member = await get_member(tx, pet_id=pet_id, user_id=user_id)
        if member is None:
            raise NotAMember()
        if member.role == "owner":
            raise AlreadyOwner()
        former = pet.owner_id
        await tx.execute_later("UPDATE pet_members SET role = 'caretaker' WHERE pet_id = %s AND user_id = %s",
                               (pet_id, former))
        await tx.execute_later("UPDATE pet_members SET role = 'owner' WHERE pet_id = %s AND user_id = %s",
                               (pet_id, user_id))
        result = await tx.execute(f"UPDATE pets SET owner_id = %s, version = version + 1, updated_at = %s"  # noqa: S608
                                  f" WHERE id = %s{condition}", (user_id, utcnow(), pet_id, *versions))
        if result.rowcount == 0:
            raise PreconditionFailed()  # rolls back the memberships' updates too
        member.role = "owner"
        await changes.emit(tx, Change("member", "transferred", user_id, user.user_id, pet_id,
                                      {"owner_id": (former, user_id)}, member))
        return await find_pet(tx, pet_id=pet_id, user=user, views=views)

    return await db.run_transaction(write)
