"""Logging in: throttle, verify the password in a thread, start a session: an access token with the role's
scopes and the session's first refresh token."""

from __future__ import annotations

from server.db import Database, Executor
from server.errors import AuthFailed
from server.plugins.accounts.services import throttle
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.credentials import hold_checked_credentials
from server.plugins.accounts.services.mfa import second_factor
from server.plugins.accounts.services.sessions import TokenPair, start_session
from server.plugins.accounts.services.users import find_user_by_email
from server.security_events import note

WRONG = "wrong account or password"


async def login(db: Database, accounts: Accounts, *, account: str, secret: str, address: str,
                user_agent: str | None = None, otp: str | None = None) -> TokenPair:
    """A new session's tokens for the account, or 401 (same message and work whether or not it exists) / 429;
    an account with a second factor needs `otp` too (401/10034 without a fresh one: the attempt stays counted).
    A 503 (the password-hash queue full, for one) takes its attempt back: the server checked nothing."""
    limits = accounts.limits
    async with throttle.attempt(db, account=account, address=address, max_account=limits.max_failures,
                                max_address=limits.max_failures_per_address, window_seconds=limits.window_seconds):
        return await _check(db, accounts, account=account, secret=secret, address=address, user_agent=user_agent,
                            otp=otp)


async def _check(db: Database, accounts: Accounts, *, account: str, secret: str, address: str,
                 user_agent: str | None, otp: str | None) -> TokenPair:
    """The counted attempt's check: the same argon2 work for an unknown account as for a wrong password."""
    user = await find_user_by_email(db, email=account)
    if user is None:
        await accounts.passwords.verify_absent(secret)
        note(reason="unknown_account")  # the log says why (security events); the answer never does
        raise AuthFailed(WRONG)  # already counted as a failure
    note(user_id=user.id)
    if not await accounts.passwords.verify(user.password_hash, secret):
        note(reason="wrong_password")
        raise AuthFailed(WRONG)
    if user.disabled:
        note(reason="disabled")
        raise AuthFailed(WRONG)
    user_id, scopes = user.id, accounts.scopes_for(user.role, email_verified=user.email_verified)

    async def start(tx: Executor) -> TokenPair:
        if not await hold_checked_credentials(tx, user=user):  # changed, reset or disabled during the check
            note(reason="credentials_changed")
            raise AuthFailed(WRONG)
        await second_factor(tx, user_id=user_id, code=otp)
        await throttle.forgive_attempt(tx, account=account, address=address)
        return await start_session(tx, accounts, user_id=user_id, scopes=scopes, user_agent=user_agent,
                                   address=address)

    return await db.run_transaction(start)
