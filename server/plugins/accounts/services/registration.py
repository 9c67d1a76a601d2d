"""Registration: admitted (a password free of context words, the client address under its throttle), then the
account and its first verification message, in one transaction."""

from __future__ import annotations

from server.db import Database, Executor
from server.plugins.accounts.passwords import check_context
from server.plugins.accounts.services import throttle
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.recovery import issue_token
from server.plugins.accounts.services.users import User, create_user


async def admit_registration(db: Database, accounts: Accounts, *, email: str, password: str, address: str) -> str:
    """The password's hash, once admitted: 400 for a password with a context word; 429 when the client address
    registered registrations_per_address times inside the window. The count commits in a transaction of its own,
    on the pool (never the request's Idempotency-Key transaction), before the password is hashed: a flood from one
    address costs no hashing, and a registration counts whatever it then answers (a 409 as a 201) and whether or
    not it carries a key. The hash is made here too, outside that transaction, which would otherwise hold its
    connection (on SQLite the only one) for as long as argon2 runs."""
    check_context(password, email=email)
    settings = accounts.settings
    await throttle.count_request(db, keys={f"register:{address[:64]}": settings.registrations_per_address},
                                 window_seconds=settings.registration_window_seconds)
    return await accounts.passwords.hash(password)


async def register(db: Executor, accounts: Accounts, *, email: str, password_hash: str, nickname: str,
                   language: str) -> User:
    """A new account (409 when the e-mail is taken) and its verification message (both or neither), with the hash
    admit_registration made once it let the request through."""
    async def create(tx: Executor) -> User:
        user = await create_user(tx, email=email, password_hash=password_hash, nickname=nickname, language=language)
        await issue_token(tx, accounts, user=user, purpose="verify")
        return user

    return await db.run_transaction(create)
