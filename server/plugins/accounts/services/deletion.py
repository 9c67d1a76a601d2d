"""Deleting an account, in one transaction: everything it owns goes through the foreign keys (its pets with
their records and everything other plugins hang under a pet or a user ON DELETE CASCADE; its memberships,
sessions, refresh, reset and verification tokens, outbox mail), plus what no key links: its idempotency
answers (its own and its registration's, kept under the anonymous scope and found by the account's Location)
and login counter. ('account', 'deleted') is told to app.changes first, while everything is still
readable: listeners tell their own deletes from it (the pets plugin, each owned pet's and membership's), so
that sync gives the other members of its pets the change. Its access tokens are revoked (that row keeps the
id until they would expire)."""

from __future__ import annotations

from server import idempotency
from server.changes import Change
from server.db import Database, Executor
from server.errors import Forbidden
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.admins import keep_an_administrator
from server.plugins.accounts.services.reentry import password_matches
from server.plugins.accounts.services.sessions import end_user_sessions
from server.plugins.accounts.services.throttle import keys
from server.plugins.accounts.services.users import get_user


async def delete_own_account(db: Database, accounts: Accounts, *, user_id: int, password: str, address: str) -> int:
    """The caller deletes their account after typing the password again (403 when it does not match, 429 past the
    login limits); how many sessions ended."""
    user = await get_user(db, user_id=user_id)
    if not await password_matches(db, accounts, user=user, password=password, address=address):
        raise Forbidden("the password does not match")
    return await delete_account(db, accounts, user_id=user_id, actor_id=user_id)


async def delete_account(db: Database, accounts: Accounts, *, user_id: int, actor_id: int | None) -> int:
    """Delete the account and all it owns (404 when absent; 409 for the last enabled administrator); how many of
    its sessions were open (ended here, for the security event, before the rows go with the account)."""

    async def write(tx: Executor) -> int:  # replayed whole if the server rolls it back
        # the check first, then the account read as last committed: a read before it could answer from a snapshot
        # taken before another administrator's delete committed
        await keep_an_administrator(tx, user_id=user_id, actor_id=actor_id, deleting=True)
        user = await get_user(tx, user_id=user_id, lock=True)
        # told first, while everything is still readable: the pets plugin tells its pets' deletes from here
        await accounts.changes.emit(tx, Change("account", "deleted", user_id, actor_id))
        ended = await end_user_sessions(tx, accounts, user_id=user_id)  # counted while its sessions are there
        await tx.execute_later("DELETE FROM idempotency_keys WHERE scope = %s", (str(user_id),))
        await idempotency.forget_created(tx, scope=idempotency.ANONYMOUS, location=user.location)
        await tx.execute_later("DELETE FROM login_failures WHERE k = %s", (keys(user.email, "")[0],))
        await tx.execute_later("DELETE FROM users WHERE id = %s", (user_id,))
        await accounts.revocations.revoke_user(tx, user_id)
        return ended

    return await db.run_transaction(write)
