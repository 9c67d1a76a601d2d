"""Invitations: sent to an e-mail by a pet's owner, answered by the account with that e-mail."""

from __future__ import annotations

import datetime as dt

import orjson

from server.auth import Principal
from server.changes import Change, Changes
from server.db import Executor, IntegrityViolation, column
from server.errors import Forbidden, NotFound
from server.plugins.accounts.services.users import normalize_email
from server.plugins.households.errors import AlreadyMember, InvitationExpired, InvitationNotPending
from server.plugins.households.models import Invitation, InvitationStatus, PageQuery, SharedRole
from server.plugins.households.services.members import get_member
from server.services import Found, Key, Sort, fetch_page, json_row, utcnow

ROW = json_row("invitations.id, invitations.pet_id, pets.name, invitations.email, invitations.role,"
               " invitations.status, invitations.invited_by, invitations.created_at, invitations.expires_at")
TABLE = "invitations JOIN pets ON pets.id = invitations.pet_id"
NEWEST_FIRST = Sort((Key("invitations.id", "id", int),), descending=True)


def decode(text: str, now: dt.datetime) -> Invitation:
    """An invitation row (ROW) as the invitation, "expired" when pending past its expiry at `now`."""
    r = orjson.loads(text)
    expires_at = dt.datetime.fromisoformat(r[8])
    status: InvitationStatus = "expired" if r[5] == "pending" and expires_at <= now else r[5]
    return Invitation(r[0], r[1], r[2], r[3], r[4], status, r[6], dt.datetime.fromisoformat(r[7]), expires_at)


async def create_invitation(db: Executor, changes: Changes, *, pet_id: int, pet_name: str, actor_id: int, email: str,
                            role: SharedRole, ttl_seconds: int) -> Invitation:
    """A pending invitation to the address (an earlier pending one to it for this pet is withdrawn). Nobody is
    looked up by the address: the answer and its time are the same whether it has an account or not."""
    address = normalize_email(email)

    async def write(tx: Executor) -> Invitation:
        now = utcnow()
        replaced = await tx.fetch_all(f"SELECT id, role FROM invitations WHERE pet_id = %s AND email = %s"  # noqa: S608
                                      f" AND status = 'pending'{tx.dialect.for_update}", (pet_id, address))
        if replaced:
            await tx.execute("UPDATE invitations SET status = 'withdrawn', answered_at = %s"
                             " WHERE pet_id = %s AND email = %s AND status = 'pending'", (now, pet_id, address))
        for earlier, earlier_role in replaced:  # in the history as a withdrawal, as by hand
            await changes.emit(tx, Change("invitation", "withdrawn", column(earlier, int), actor_id, pet_id,
                                          {"role": (column(earlier_role, str), None)}))
        expires_at = now + dt.timedelta(seconds=ttl_seconds)
        try:
            result = await tx.execute(
                "INSERT INTO invitations (pet_id, email, role, status, invited_by, created_at, expires_at)"
                " VALUES (%s, %s, %s, 'pending', %s, %s, %s)", (pet_id, address, role, actor_id, now, expires_at))
        except IntegrityViolation:  # the pet was deleted since the handler found it
            raise NotFound() from None
        assert result.lastrowid is not None
        # The history keeps the role only: the address may belong to someone who never becomes a member.
        await changes.emit(tx, Change("invitation", "invited", result.lastrowid, actor_id, pet_id,
                                      {"role": (None, role)}))
        return Invitation(result.lastrowid, pet_id, pet_name, address, role, "pending", actor_id, now, expires_at)

    return await db.run_transaction(write)


async def list_pet_invitations(db: Executor, *, pet_id: int, query: PageQuery) -> Found[Invitation]:
    """The pet's pending invitations, newest first (those past their expiry say "expired"), the total (unless
    include_total=false) and the next page's cursor."""
    now = utcnow()
    return await fetch_page(db, row=ROW, table=TABLE,
                            where="invitations.pet_id = %s AND invitations.status = 'pending'", args=(pet_id,),
                            sort=NEWEST_FIRST, sort_name="pet_invitations", limit=query.limit, offset=query.offset,
                            cursor=query.cursor, count=query.include_total, decode=lambda text: decode(text, now))


# An invitation is addressed to an e-mail: only an account that proved it owns the address (verified it) is
# shown one or may answer it, or anyone registering someone else's address would join their family's pets.
UNVERIFIED = "verify your e-mail address first (POST /v1/users/me/email-verification) to answer invitations"


async def _email_of(db: Executor, user_id: int) -> tuple[str, bool]:
    row = await db.fetch_one("SELECT email, email_verified_at FROM users WHERE id = %s", (user_id,))
    if row is None:
        raise NotFound()
    return column(row[0], str), row[1] is not None


async def invited_address(db: Executor, user_id: int) -> str | None:
    """The address whose invitations the user is shown (its list, its data export): its e-mail once verified,
    None before (UNVERIFIED); 404 when the account is gone."""
    email, verified = await _email_of(db, user_id)
    return email if verified else None


async def list_my_invitations(db: Executor, *, user_id: int, query: PageQuery) -> Found[Invitation]:
    """The pending, unexpired invitations to the caller's e-mail, newest first; none until the e-mail is verified
    (the account's `email_verified` says why). The total (unless include_total=false) and the next page's cursor;
    an unverified caller's empty page goes through the same page helper, so its cursor and offset are checked
    alike."""
    now = utcnow()
    address = await invited_address(db, user_id)
    where = "invitations.email = %s AND invitations.status = 'pending' AND invitations.expires_at > %s"
    return await fetch_page(db, row=ROW, table=TABLE, where=where if address is not None else f"{where} AND 1 = 0",
                            args=(address or "", now), sort=NEWEST_FIRST, sort_name="invitations", limit=query.limit,
                            offset=query.offset, cursor=query.cursor, count=query.include_total,
                            decode=lambda text: decode(text, now))


async def _locked(tx: Executor, invitation_id: int) -> Invitation | None:
    row = await tx.fetch_one(f"SELECT {ROW} FROM {TABLE} WHERE invitations.id = %s{tx.dialect.for_update}",  # noqa: S608
                             (invitation_id,))
    return None if row is None else decode(column(row[0], str), utcnow())


async def withdraw_invitation(db: Executor, changes: Changes, *, pet_id: int, invitation_id: int,
                              actor_id: int) -> Invitation:
    """Withdraw a pending invitation of the pet (404 when it is not the pet's, 409 when already answered)."""

    async def write(tx: Executor) -> Invitation:
        invitation = await _locked(tx, invitation_id)
        if invitation is None or invitation.pet_id != pet_id:
            raise NotFound()
        await _set_status(tx, invitation, "withdrawn")
        await changes.emit(tx, Change("invitation", "withdrawn", invitation.id, actor_id, pet_id,
                                      {"role": (invitation.role, None)}))
        invitation.status = "withdrawn"
        return invitation

    return await db.run_transaction(write)


async def _set_status(tx: Executor, invitation: Invitation, status: str) -> None:
    """pending -> status, conditionally (on Galera a row lock on one node does not stop another node's writer)."""
    result = await tx.execute("UPDATE invitations SET status = %s, answered_at = %s WHERE id = %s"
                              " AND status = 'pending'", (status, utcnow(), invitation.id))
    if result.rowcount == 0:
        raise InvitationNotPending()


async def answer_invitation(db: Executor, changes: Changes, *, invitation_id: int, user: Principal,
                            accept: bool) -> Invitation:
    """The invitee accepts (becoming a member, in the same transaction) or declines. Anyone else: 404, as if it did
    not exist; the invitee whose e-mail is not verified: 403/1004; already answered or withdrawn: 409/2301;
    expired: 410/2302; already a member: 409/2303. Each refusal changes nothing."""

    async def write(tx: Executor) -> Invitation:
        invitation = await _locked(tx, invitation_id)
        email, verified = await _email_of(tx, user.user_id)
        if invitation is None or invitation.email != email:
            raise NotFound()
        if not verified:
            raise Forbidden(UNVERIFIED)
        if invitation.status == "expired":
            raise InvitationExpired()
        if invitation.status != "pending":
            raise InvitationNotPending()
        if not accept:
            await _set_status(tx, invitation, "declined")  # not in the pet's history: the invitee is no member
            invitation.status = "declined"
            return invitation
        await _set_status(tx, invitation, "accepted")
        await _join(tx, invitation, user.user_id, changes)
        invitation.status = "accepted"
        return invitation

    return await db.run_transaction(write)


async def _join(tx: Executor, invitation: Invitation, user_id: int, changes: Changes) -> None:
    if await get_member(tx, pet_id=invitation.pet_id, user_id=user_id) is not None:
        raise AlreadyMember()
    try:
        await tx.execute("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, %s, %s)",
                         (invitation.pet_id, user_id, invitation.role, utcnow()))
    except IntegrityViolation:  # joined meanwhile through another node
        raise AlreadyMember() from None
    member = await get_member(tx, pet_id=invitation.pet_id, user_id=user_id)
    await changes.emit(tx, Change("member", "shared", user_id, user_id, invitation.pet_id,
                                  {"role": (None, invitation.role)}, member))
