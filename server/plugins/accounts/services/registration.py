"""Registration: the account and its first verification message, in one transaction."""

from __future__ import annotations

from server.db import Executor
from server.plugins.accounts.passwords import check_context
from server.plugins.accounts.services import throttle
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.recovery import issue_token
from server.plugins.accounts.services.users import User, create_user


async def register(db: Executor, accounts: Accounts, *, email: str, password: str, nickname: str,
                   language: str, address: str) -> User:
    """A new account (409 when the e-mail is taken) and its verification message (both or neither); 429 when
    the client address registered registrations_per_address times inside the window (counted before the
    password is hashed, like a login attempt, so a flood from one address costs no hashing)."""
    check_context(password, email=email)
    settings = accounts.settings
    await throttle.count_request(db, keys={f"register:{address[:64]}": settings.registrations_per_address},
                                 window_seconds=settings.registration_window_seconds)
    password_hash = await accounts.passwords.hash(password)

    async def create(tx: Executor) -> User:
        user = await create_user(tx, email=email, password_hash=password_hash, nickname=nickname, language=language)
        await issue_token(tx, accounts, user=user, purpose="verify")
        return user

    return await db.run_transaction(create)
