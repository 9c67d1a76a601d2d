"""Two-factor authentication (TOTP, RFC 6238, via pyotp): enrolling shows the secret once and waits for a code
from the authenticator app; once confirmed, logging in needs a code as well as the password, and ten single-use
recovery codes (shown once, stored as SHA-256 only) stand in for a lost device. A code works once: the time step
it matched is recorded, and a code of that step or an earlier one is refused (RFC 6238 section 5.2)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import pyotp

from server.db import Database, Executor, column
from server.errors import Conflict, Forbidden, InvalidParameter, SecondFactorRequired
from server.plugins.accounts.services.accounts import Accounts
from server.plugins.accounts.services.reentry import forgive_attempt, password_matches
from server.plugins.accounts.services.users import User, get_user
from server.services import now_ms, utcnow

ISSUER = "pet-api"
RECOVERY_CODES = 10
WINDOW = 1  # steps of 30 s accepted either side of now: the phone's clock may be a little off
WRONG_PASSWORD = "the password does not match"


@dataclass(frozen=True, slots=True)
class Enrollment:
    """Shown once: the secret (for typing in) and the otpauth:// URI (for a QR code)."""

    secret: str
    otpauth_uri: str


@dataclass(frozen=True, slots=True)
class RecoveryCodes:
    """Shown once, when the second factor is turned on: each works once instead of a code."""

    recovery_codes: list[str]


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().encode()).hexdigest()


def matching_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step (within WINDOW of now) whose code this is, or None."""
    totp = pyotp.TOTP(secret)
    step = totp.timecode(time.time() if at is None else at)
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(candidate), code.strip()):
            return candidate
    return None


async def _password_matches(db: Database, accounts: Accounts, *, user: User, password: str, address: str,
                            forgive: bool = True) -> None:
    if not await password_matches(db, accounts, user=user, password=password, address=address, forgive=forgive):
        raise Forbidden(WRONG_PASSWORD)


async def enabled(db: Executor, *, user_id: int) -> bool:
    """Whether the account has a confirmed second factor."""
    row = await db.fetch_one("SELECT 1 FROM mfa_factors WHERE user_id = %s AND confirmed_at IS NOT NULL", (user_id,))
    return row is not None


async def start_enrollment(db: Database, accounts: Accounts, *, user_id: int, password: str,
                           address: str) -> Enrollment:
    """A new secret for the account (replacing one not confirmed yet), after the password (403/1004; 429/1006
    past the login limits); 409 when on already."""
    user = await get_user(db, user_id=user_id)
    await _password_matches(db, accounts, user=user, password=password, address=address)
    secret = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended key length

    async def write(tx: Executor) -> None:
        if await enabled(tx, user_id=user_id):
            raise Conflict("two-factor authentication is already on; turn it off first")
        await tx.execute_later("DELETE FROM mfa_factors WHERE user_id = %s", (user_id,))
        await tx.execute_later("INSERT INTO mfa_factors (user_id, secret, created_at) VALUES (%s, %s, %s)",
                               (user_id, secret, utcnow()))

    await db.run_transaction(write)
    return Enrollment(secret, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER))


async def confirm_enrollment(db: Database, *, user_id: int, code: str) -> RecoveryCodes:
    """Turn the second factor on with a code of the pending secret; the recovery codes, shown this once."""
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]

    async def write(tx: Executor) -> None:
        row = await tx.fetch_one("SELECT secret FROM mfa_factors WHERE user_id = %s AND confirmed_at IS NULL"  # noqa: S608
                                 f"{tx.dialect.for_update}", (user_id,))
        if row is None:
            raise Conflict("no enrollment to confirm: start with POST /v1/users/me/mfa")
        step = matching_step(column(row[0], str), code)
        if step is None:
            raise InvalidParameter(errors=[{"field": "code", "message": "does not match"}])
        await tx.execute_later("UPDATE mfa_factors SET confirmed_at = %s, last_step = %s WHERE user_id = %s",
                               (utcnow(), step, user_id))
        await tx.execute_later("DELETE FROM mfa_recovery_codes WHERE user_id = %s", (user_id,))
        for recovery in codes:
            await tx.execute_later("INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES (%s, %s)",
                                   (user_id, _hash(recovery)))

    await db.run_transaction(write)
    return RecoveryCodes(codes)


async def use_code(tx: Executor, *, user_id: int, code: str) -> bool:
    """Inside the caller's transaction: whether `code` is a fresh TOTP code of the account's confirmed secret
    (its step is then recorded) or one of its unused recovery codes (then used up)."""
    row = await tx.fetch_one("SELECT secret, last_step FROM mfa_factors WHERE user_id = %s", (user_id,))
    if row is None:
        return False
    step = matching_step(column(row[0], str), code)
    if step is not None:
        # Conditional: of two logins racing with one code, one records the step and the other finds it taken.
        taken = await tx.execute("UPDATE mfa_factors SET last_step = %s WHERE user_id = %s AND last_step < %s",
                                 (step, user_id, step))
        return taken.rowcount == 1
    used = await tx.execute("UPDATE mfa_recovery_codes SET used_at_ms = %s WHERE user_id = %s AND code_hash = %s"
                            " AND used_at_ms IS NULL", (now_ms(), user_id, _hash(code)))
    return used.rowcount == 1


async def second_factor(tx: Executor, *, user_id: int, code: str | None) -> None:
    """At login, after the password: nothing when the account has no second factor; 401/10034 when it has one
    and `code` is missing, wrong or used before."""
    if not await enabled(tx, user_id=user_id):
        return
    if not code or not await use_code(tx, user_id=user_id, code=code):
        raise SecondFactorRequired()


async def disable(db: Database, accounts: Accounts, *, user_id: int, password: str, code: str, address: str) -> None:
    """Turn the second factor off (or drop an unconfirmed enrollment): the password and a code (or a recovery
    code) both; 403/1004 for the password, 401/10034 for the code (a wrong one stays counted against the login
    limits, as at login: 429/1006 past them)."""
    user = await get_user(db, user_id=user_id)
    await _password_matches(db, accounts, user=user, password=password, address=address, forgive=False)

    async def write(tx: Executor) -> None:
        if not await use_code(tx, user_id=user_id, code=code):
            raise SecondFactorRequired()
        await forgive_attempt(tx, user=user, address=address)
        await tx.execute_later("DELETE FROM mfa_recovery_codes WHERE user_id = %s", (user_id,))
        await tx.execute_later("DELETE FROM mfa_factors WHERE user_id = %s", (user_id,))

    await db.run_transaction(write)
