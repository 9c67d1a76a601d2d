"""A password typed again to confirm a sensitive change (turning the second factor on or off, a new password,
deleting the account): a guess like a login's, counted against the same limits before it is checked, so that
a stolen access token cannot be used to try passwords without bound."""

from __future__ import annotations

import functools

from server.db import Database, Executor
from server.plugins.accounts.services import throttle
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.users import User

TOO_MANY = "too many wrong passwords, try again later"


async def password_matches(db: Database, accounts: Accounts, *, user: User, password: str, address: str,
                           forgive: bool = True) -> bool:
    """Whether the password is the account's; 429/1006 with Retry-After once the account or the address is at
    the login limits (failed logins and failed re-entries count together). A match forgives the attempt, as a
    successful login does, unless `forgive` is False: the caller then calls forgive_attempt once the rest of what
    it checks (a second factor's code) has passed too. A 503 (the password-hash queue full) takes the attempt back."""
    limits = accounts.limits
    async with throttle.attempt(db, account=user.email, address=address, max_account=limits.max_failures,
                                max_address=limits.max_failures_per_address, window_seconds=limits.window_seconds,
                                message=TOO_MANY):
        if not await accounts.passwords.verify(user.password_hash, password):
            return False
        if forgive:
            await db.run_transaction(functools.partial(forgive_attempt, user=user, address=address))
    return True


async def forgive_attempt(tx: Executor, *, user: User, address: str) -> None:
    """Take back the attempt counted by password_matches(forgive=False), in the caller's transaction."""
    await throttle.forgive_attempt(tx, account=user.email, address=address)
