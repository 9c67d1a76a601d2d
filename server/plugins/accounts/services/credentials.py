"""Credential changes: a new password, role or disabled flag revokes the account's earlier tokens, in the
same transaction as the change (both or neither), and tells app.changes there (what else ends with the old
credentials, such as a calendar feed, ends in that transaction too); a new password or disabling also ends the
account's sessions (all but the caller's own, for a change made by the account itself). Only what differs from
the account as last committed counts: a value equal to the current one writes, revokes and tells nothing. The
handlers, the password reset and `main.py create-admin` all come here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from server.changes import Change
from server.db import Database, Executor, Value
from server.errors import Conflict, InvalidParameter
from server.plugins.accounts.passwords import check_context
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.admins import keep_an_administrator
from server.plugins.accounts.services.reentry import password_matches
from server.plugins.accounts.services.sessions import end_user_sessions
from server.plugins.accounts.services.users import User, create_user, find_user_by_email, get_user, update_user
from server.services import utcnow

LOOKALIKE = ("looks like an existing account's e-mail (it differs only by case, width or look-alike characters); "
             "promote that account by its own address")


@dataclass(frozen=True, slots=True)
class CredentialsChanged:
    """The account after a credential change, the fields whose value changed (none: nothing was written, revoked
    or told) and how many sessions it ended."""

    user: User
    changed: frozenset[str]
    sessions_ended: int = 0


def _unchanged(user: User, name: str, value: Value) -> bool:
    """Whether writing value to the field leaves the account as it is (a verified address keeps its first time)."""
    if name == "email_verified_at":
        return user.email_verified
    return (int(user.disabled) if name == "disabled" else getattr(user, name)) == value


def _told(user: User, name: str, value: Value) -> tuple[Any, Any]:
    """What app.changes hears of a changed field: (old, new) for the role and the disabled flag, which listeners
    act on (a feed ends when the account becomes disabled); the name only, (None, None), for the others."""
    if name == "role":
        return user.role, value
    return (user.disabled, bool(value)) if name == "disabled" else (None, None)


async def replace_password(tx: Executor, accounts: Accounts, *, user_id: int, fields: dict[str, Value],
                           actor_id: int | None, keep_session: int | None = None) -> CredentialsChanged:
    """Inside the caller's transaction: write the fields whose value differs from the account's (read with a
    locking read, as last committed) and revoke the user's earlier tokens; a new password or disabling also ends
    the sessions (but keep_session). 404 when the account is gone."""
    current = await get_user(tx, user_id=user_id, lock=True)
    differing = {name: value for name, value in fields.items() if not _unchanged(current, name, value)}
    if not differing:
        return CredentialsChanged(current, frozenset())
    user = await update_user(tx, user_id=user_id, fields=differing)
    await accounts.revocations.revoke_user(tx, user.id)
    await accounts.changes.emit(tx, Change("account", "credentials_changed", user.id, actor_id, changed={
        name: _told(current, name, value) for name, value in differing.items()}))
    ended = 0
    if "password_hash" in differing or differing.get("disabled"):
        ended = await end_user_sessions(tx, accounts, user_id=user.id, keep=keep_session)
    return CredentialsChanged(user, frozenset(differing), ended)


async def hold_checked_credentials(tx: Executor, *, user: User) -> bool:
    """Inside the transaction that acts on a password checked before it began (argon2 runs outside transactions):
    whether the account still has the password hash, the role and the enabled state it had when checked. The row
    is written (its updated_at, as keep_an_administrator does), so replace_password waits for this transaction on
    one server and certifies against it across Galera nodes: it comes either before, and this answers False, or
    after, and ends what this transaction started."""
    exact = tx.dialect.exact  # MariaDB's collation ignores case: compare the hash exactly
    # MariaDB counts the rows an UPDATE changed, not those it matched: a login stamping the very instant another
    # one stamped (same microsecond) would change nothing and read as "credentials changed". The new value always
    # differs from the one held.
    now = utcnow()
    held = await tx.execute(
        "UPDATE users SET updated_at = CASE WHEN updated_at = %s THEN %s ELSE %s END"  # noqa: S608
        f" WHERE id = %s AND password_hash{exact} = %s AND role = %s AND disabled = 0",
        (now, now + dt.timedelta(microseconds=1), now, user.id, user.password_hash, user.role))
    return held.rowcount == 1


async def _update_and_revoke(db: Database, accounts: Accounts, *, user_id: int, fields: dict[str, Value],
                             actor_id: int | None, keep_session: int | None = None) -> CredentialsChanged:
    """replace_password in a transaction of its own (replayed whole if the server rolls it back)."""

    async def write(tx: Executor) -> CredentialsChanged:
        return await replace_password(tx, accounts, user_id=user_id, fields=fields, actor_id=actor_id,
                                      keep_session=keep_session)

    return await db.run_transaction(write)


async def change_own_account(db: Database, accounts: Accounts, *, user_id: int, nickname: str | None,
                             password: str | None, current_password: str | None,
                             address: str, session_id: int | None = None) -> CredentialsChanged:
    """Change the caller's nickname and/or password (400 unless current_password matches, 429 past the login
    limits); a new password revokes the earlier access tokens and ends every other session (the caller's own
    refreshes). The user, what changed (a nickname it already has: nothing, nothing written) and how many
    sessions ended."""
    user = await get_user(db, user_id=user_id)
    fields: dict[str, Value] = {} if nickname is None else {"nickname": nickname}
    if password is None:
        if nickname is None or nickname == user.nickname:
            return CredentialsChanged(user, frozenset())
        return CredentialsChanged(await update_user(db, user_id=user.id, fields=fields), frozenset(fields))
    if not await password_matches(db, accounts, user=user, password=current_password or "", address=address):
        raise InvalidParameter(errors=[{"field": "current_password", "message": "does not match"}])
    check_context(password, email=user.email)
    fields["password_hash"] = await accounts.passwords.hash(password)
    return await _update_and_revoke(db, accounts, user_id=user.id, fields=fields, actor_id=user.id,
                                    keep_session=session_id)


async def set_role_or_disabled(db: Database, accounts: Accounts, *, user_id: int, role: str | None,
                               disabled: bool | None, actor_id: int | None) -> CredentialsChanged:
    """An administrator's change of role (400 when the role map does not know it) or disabled flag; either
    revokes the earlier tokens, and disabling ends the sessions; values equal to the account's change nothing.
    409 when it would demote or disable the actor itself or the last active administrator."""
    fields: dict[str, Value] = {}
    if role is not None:
        if not accounts.roles.knows(role):
            raise InvalidParameter(errors=[{"field": "role", "message": "unknown role"}])
        fields["role"] = role
    if disabled is not None:
        fields["disabled"] = int(disabled)
    if not fields:
        return CredentialsChanged(await get_user(db, user_id=user_id), frozenset())

    async def write(tx: Executor) -> CredentialsChanged:
        await keep_an_administrator(tx, user_id=user_id, actor_id=actor_id, role=role, disabled=disabled)
        return await replace_password(tx, accounts, user_id=user_id, fields=fields, actor_id=actor_id)

    return await db.run_transaction(write)


async def create_or_promote_admin(db: Database, accounts: Accounts, *, email: str, nickname: str,
                                  password: str) -> tuple[User, bool]:
    """Create an admin, or make the existing account an enabled admin with this password (revoking its
    earlier tokens); True when created. Its address counts as verified: the operator on the machine typed it (the
    first administrator is the operator's, docs/security.md), and with require_verified_email an unverified
    admin would lack every ':write' scope. An address that only looks like an existing account's is refused (400
    naming email): the operator promotes that account by its own address, or picks another."""
    check_context(password, email=email)
    password_hash = await accounts.passwords.hash(password)
    user = await find_user_by_email(db, email=email)
    if user is None:
        try:
            return (await create_user(db, email=email, password_hash=password_hash, nickname=nickname, role="admin",
                                      verified=True), True)
        except Conflict:
            raise InvalidParameter(errors=[{"field": "email", "message": LOOKALIKE}]) from None
    fields: dict[str, Value] = {"role": "admin", "password_hash": password_hash, "disabled": 0,
                                "email_verified_at": utcnow()}  # kept as it is when already verified
    return (await _update_and_revoke(db, accounts, user_id=user.id, fields=fields, actor_id=None)).user, False
