"""Logging in: throttle, verify the password in a thread, issue a token with the role's scopes."""

from __future__ import annotations

from server.auth import IssuedToken, TokenSigner
from server.config import Config
from server.db import Database
from server.errors import AuthFailed
from server.passwords import Passwords
from server.rbac import RoleMap
from server.services import throttle
from server.services.users import find_user_by_email

WRONG = "wrong account or password"


async def login(db: Database, *, account: str, secret: str, address: str, config: Config,
                passwords: Passwords, roles: RoleMap, signer: TokenSigner) -> IssuedToken:
    """A token for the account, or 401 (same message and work whether or not it exists) / 429."""
    await throttle.count_attempt(db, account=account, address=address, max_account=config.login_max_failures,
                                 max_address=config.login_max_failures_per_address,
                                 window_seconds=config.login_window_seconds)
    user = await find_user_by_email(db, email=account)
    if user is None:
        ok = await passwords.verify_absent(secret)
    else:
        ok = await passwords.verify(user.password_hash, secret) and not user.disabled
    if not ok or user is None:
        raise AuthFailed(WRONG)  # already counted as a failure
    await throttle.forgive_attempt(db, account=account, address=address)
    return signer.issue(user.id, roles.scopes_for(user.role))
