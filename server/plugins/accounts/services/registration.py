"""Registration: the account and its first verification message, in one transaction."""

from __future__ import annotations

from server.db import Executor
from server.plugins.accounts.passwords import check_context
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.recovery import issue_token
from server.plugins.accounts.services.users import User, create_user


async def register(db: Executor, accounts: Accounts, *, email: str, password: str, nickname: str,
                   language: str) -> User:
    """A new account (409 when the e-mail is taken) and its verification message (both or neither)."""
    check_context(password, email=email, nickname=nickname)
    password_hash = await accounts.passwords.hash(password)

    async def create(tx: Executor) -> User:
        user = await create_user(tx, email=email, password_hash=password_hash, nickname=nickname, language=language)
        await issue_token(tx, accounts, user=user, purpose="verify")
        return user

    return await db.run_transaction(create)
