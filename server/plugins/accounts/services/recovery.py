"""Password reset and e-mail verification: single-use tokens (256 random bits, stored as SHA-256 only) sent
by mail through the outbox, in the transaction that creates them."""

from __future__ import annotations

from typing import Literal

from server.db import Database, Executor, Value, column
from server.errors import Conflict, TokenExpired, TokenInvalid
from server.plugins.accounts.passwords import check_context
from server.plugins.accounts.services import throttle
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.credentials import replace_password
from server.plugins.accounts.services.mail import enqueue
from server.plugins.accounts.services.sessions import hash_token, new_secret
from server.plugins.accounts.services.users import User, find_user_by_email, get_user, update_user
from server.services import now_ms, utcnow

Purpose = Literal["reset", "verify"]
KINDS: dict[Purpose, str] = {"reset": "password_reset", "verify": "email_verification"}


async def _throttle(db: Executor, accounts: Accounts, *, keys: tuple[str, str]) -> None:
    """429 once the account or the client address asked for too many messages inside the window (inside a
    transaction, a refused request rolls it back whole)."""
    s = accounts.settings
    await throttle.count_request(db, keys={keys[0]: s.mail_requests_per_account, keys[1]: s.mail_requests_per_address},
                                 window_seconds=s.mail_window_seconds)


async def issue_token(tx: Executor, accounts: Accounts, *, user: User, purpose: Purpose) -> None:
    """A new single-use token for the user, and the message carrying it (same transaction)."""
    ttl = (accounts.settings.password_reset_ttl_seconds if purpose == "reset"
           else accounts.settings.email_verification_ttl_seconds)
    token, now = new_secret(), now_ms()
    await tx.execute_later("INSERT INTO account_tokens (token_hash, purpose, user_id, created_at_ms, expires_at_ms)"
                           " VALUES (%s, %s, %s, %s, %s)", (hash_token(token), purpose, user.id, now, now + ttl * 1000))
    await enqueue(tx, accounts.settings, user_id=user.id, recipient=user.email, kind=KINDS[purpose],
                  language=user.language, nickname=user.nickname, token=token, ttl_seconds=ttl)


async def request_password_reset(db: Database, accounts: Accounts, *, email: str, address: str) -> None:
    """Send a reset message when the account exists (and is enabled); the caller answers the same either way, and
    after the same work: one transaction counts the request, looks the account up and writes the token and its
    message beside the count (two more rows in the commit's round trip), where a second transaction for a known
    account alone made its answer measurably slower (OWASP: no quick exit for an unknown one)."""

    async def request(tx: Executor) -> None:
        await _throttle(tx, accounts, keys=(f"reset:{email.strip().lower()[:254]}", f"mail-address:{address[:64]}"))
        user = await find_user_by_email(tx, email=email)
        if user is not None and not user.disabled:
            await issue_token(tx, accounts, user=user, purpose="reset")

    await db.run_transaction(request)


async def _check_token(db: Executor, *, token: str, purpose: Purpose) -> int:
    """The user of a valid token, which stays usable; 401/10031 for an unknown or used one, 401/10032 expired."""
    row = await db.fetch_one("SELECT user_id, expires_at_ms FROM account_tokens WHERE token_hash = %s"
                             " AND purpose = %s", (hash_token(token), purpose))
    if row is None:
        raise TokenInvalid()
    if column(row[1], int) <= now_ms():
        raise TokenExpired()  # it stays, expired, until the account goes
    return column(row[0], int)


async def _take_token(tx: Executor, *, token: str, purpose: Purpose) -> int:
    """The user of a valid token, which is used up; 401/10031 for an unknown or used one, 401/10032 expired.
    (The delete takes the row's lock: of two concurrent uses, one finds it gone.)"""
    user_id = await _check_token(tx, token=token, purpose=purpose)
    taken = await tx.execute("DELETE FROM account_tokens WHERE token_hash = %s AND purpose = %s",
                             (hash_token(token), purpose))
    if taken.rowcount != 1:
        raise TokenInvalid()
    return user_id


async def confirm_password_reset(db: Database, accounts: Accounts, *, token: str, password: str) -> User:
    """Set the new password from a reset token: every session ends, every access token is revoked, and the
    account's other reset tokens stop working. Receiving the message proves the address: it is verified. The
    token is checked before the password is hashed, so an unknown or expired one costs no argon2 work (and cannot
    fill the hash queue); the transaction takes it, checking it again."""
    await _check_token(db, token=token, purpose="reset")
    password_hash = await accounts.passwords.hash(password)

    async def confirm(tx: Executor) -> User:
        user_id = await _take_token(tx, token=token, purpose="reset")
        await tx.execute_later("DELETE FROM account_tokens WHERE user_id = %s AND purpose = 'reset'", (user_id,))
        user = await get_user(tx, user_id=user_id)
        check_context(password, email=user.email)  # refused: the token stays usable
        fields: dict[str, Value] = {"password_hash": password_hash}
        if not user.email_verified:
            fields["email_verified_at"] = utcnow()
        return (await replace_password(tx, accounts, user_id=user_id, fields=fields, actor_id=user_id)).user

    return await db.run_transaction(confirm)


async def send_verification(db: Database, accounts: Accounts, *, user_id: int, address: str) -> None:
    """Send (again) the verification message; 409 when the address is already verified, 429 when throttled."""
    user = await get_user(db, user_id=user_id)
    if user.email_verified:
        raise Conflict("the e-mail is already verified")
    await _throttle(db, accounts, keys=(f"verify:{user.id}", f"mail-address:{address[:64]}"))

    async def issue(tx: Executor) -> None:
        await issue_token(tx, accounts, user=user, purpose="verify")

    await db.run_transaction(issue)


async def confirm_email(db: Database, accounts: Accounts, *, token: str) -> User:
    """Mark the address of the token's account verified (its other verification tokens go too)."""

    async def confirm(tx: Executor) -> User:
        user_id = await _take_token(tx, token=token, purpose="verify")
        await tx.execute_later("DELETE FROM account_tokens WHERE user_id = %s AND purpose = 'verify'", (user_id,))
        return await update_user(tx, user_id=user_id, fields={"email_verified_at": utcnow()})

    return await db.run_transaction(confirm)
