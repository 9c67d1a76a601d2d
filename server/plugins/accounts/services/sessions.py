"""Sessions: one per login (per device), holding a chain of single-use refresh tokens.

A refresh token is 256 random bits, stored only as its SHA-256 (a guess-proof secret needs no slow hash).
Refreshing marks the token used and issues the next one in the same transaction; presenting a used token
again means two parties hold the chain (a stolen token replayed, or its owner after the thief): the whole
session ends, its refresh tokens in the database and its access tokens through the revocation list, which
every worker and instance honours within `revocation_refresh_seconds`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from server.auth import IssuedToken, Principal
from server.db import Executor, column, datetime_column, nullable
from server.errors import NotFound, TokenExpired, TokenInvalid, TokenRevoked
from server.plugins.accounts.services.accounts import Accounts
from server.security_events import note
from server.services import now_ms, utcnow

_BROWSERS = (("Edg", "Edge"), ("OPR", "Opera"), ("Firefox", "Firefox"), ("Chrome", "Chrome"), ("Safari", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


@dataclass(slots=True)
class SessionOut:
    """What GET /v1/sessions shows of a session (never a token)."""

    id: int
    device: str
    address: str
    created_at: dt.datetime
    last_used_at: dt.datetime
    current: bool


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: IssuedToken
    refresh_token: str
    refresh_expires_in: int


def device_label(user_agent: str | None) -> str:
    """A short label for a User-Agent: 'Firefox on Linux', 'pet-app on iOS' (an app's own product name),
    'okhttp', or 'unknown'."""
    agent = (user_agent or "").strip()
    product = re.match(r"[A-Za-z][A-Za-z0-9._-]{0,63}", agent)
    name = product.group(0) if product and product.group(0) != "Mozilla" else None
    browser = next((label for marker, label in _BROWSERS if marker in agent), None) or name
    system = next((label for marker, label in _SYSTEMS if marker in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "unknown"


def hash_token(token: str) -> str:
    """The stored form of a refresh token (or of any other random single-use token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    """A random token of 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


async def _issue_pair(tx: Executor, accounts: Accounts, *, user_id: int, scopes: frozenset[str], session_id: int,
                      now: int, refresh_expires_in: int) -> TokenPair:
    """An access token bound to the session and the refresh token that will replace it (stored hashed)."""
    access = accounts.signer.issue(user_id, scopes, session_id=session_id)
    token = new_secret()
    await tx.execute_later("INSERT INTO refresh_tokens (token_hash, session_id, access_jti, created_at_ms)"
                           " VALUES (%s, %s, %s, %s)", (hash_token(token), session_id, access.principal.jti, now))
    return TokenPair(access, token, refresh_expires_in)


async def start_session(tx: Executor, accounts: Accounts, *, user_id: int, scopes: frozenset[str],
                        user_agent: str | None, address: str) -> TokenPair:
    """A new session for a login: its row, its first refresh token, an access token bound to it."""
    now, moment = now_ms(), utcnow()
    lifetime = accounts.settings.refresh_token_expiration
    result = await tx.execute(
        "INSERT INTO sessions (user_id, device, address, created_at, last_used_at, expires_at_ms)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (user_id, device_label(user_agent)[:128], address[:64], moment, moment, now + lifetime * 1000))
    return await _issue_pair(tx, accounts, user_id=user_id, scopes=scopes, session_id=column(result.lastrowid, int),
                             now=now, refresh_expires_in=lifetime)


# What a refresh reads of its token, session and account.
REFRESHED = ("SELECT s.id, s.user_id, s.last_used_at, s.expires_at_ms, s.ended_at_ms, u.role, u.disabled, r.access_jti,"
             " r.created_at_ms, u.email_verified_at"
             " FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id")


@dataclass(frozen=True, slots=True)
class _Refreshed:
    pair: TokenPair | None = None
    replayed: bool = False
    user_id: int | None = None
    session_id: int | None = None


async def refresh_session(db: Executor, accounts: Accounts, *, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair (the old one is used up); 10031 unknown, 10032 expired,
    10033 ended session or replayed token (which ends the session)."""
    token_hash = hash_token(refresh_token)

    async def rotate(tx: Executor) -> _Refreshed:
        now = now_ms()
        # Marking it used first takes the row's lock: of two concurrent refreshes, the second sees it used.
        claimed = await tx.execute("UPDATE refresh_tokens SET used_at_ms = %s WHERE token_hash = %s"
                                   " AND used_at_ms IS NULL", (now, token_hash))
        # The role is read with a locking read, as last committed: a change of role (or disabled flag) writes the
        # user's row, so this waits for it and signs the new role's scopes, or comes first and signs before the
        # change's revocation cut-off. A plain read could answer the old role from before the change's commit and
        # sign after its cut-off: a token with the old scopes that no revocation covers.
        row = await tx.fetch_one(f"{REFRESHED} WHERE r.token_hash = %s{tx.dialect.for_update}", (token_hash,))
        if row is None:
            raise TokenInvalid()
        session_id, user_id = column(row[0], int), column(row[1], int)
        if nullable(row[4], int) is not None or column(row[6], int):
            raise TokenRevoked()
        if claimed.rowcount != 1:  # used before: whoever holds this chain now, the session is compromised
            await end_sessions(tx, accounts, session_ids=[session_id])
            return _Refreshed(replayed=True, user_id=user_id, session_id=session_id)
        last_used = datetime_column(row[2])
        idle = (utcnow() - last_used).total_seconds() > accounts.settings.session_idle_timeout
        if column(row[3], int) <= now or idle:
            raise TokenExpired()
        await tx.execute_later("UPDATE sessions SET last_used_at = %s WHERE id = %s", (utcnow(), session_id))
        # Across Galera nodes locks are not shared: writing the user's row too makes this refresh and a change of
        # role certify against each other (the loser is replayed), as a login's hold_checked_credentials does.
        await tx.execute_later("UPDATE users SET updated_at = %s WHERE id = %s", (utcnow(), user_id))
        # the pair it came with is over: its access token too
        await accounts.revocations.revoke_jti(tx, column(row[7], str), expires_at_ms=column(row[8], int)
                                              + accounts.revocations.token_expiration_ms + 1000)
        left = max(1, (column(row[3], int) - now) // 1000)
        scopes = accounts.scopes_for(column(row[5], str), email_verified=row[9] is not None)
        return _Refreshed(await _issue_pair(tx, accounts, user_id=user_id, scopes=scopes, session_id=session_id,
                                            now=now, refresh_expires_in=left))

    outcome = await db.run_transaction(rotate)
    if outcome.pair is None:  # the session's end is committed; now refuse
        note(reason="replayed", user_id=outcome.user_id, session_id=outcome.session_id, sessions_ended=1)
        raise TokenRevoked()
    return outcome.pair


async def end_sessions(tx: Executor, accounts: Accounts, *, session_ids: list[int]) -> None:
    """End these sessions: their refresh tokens stop working at once, their access tokens everywhere within
    the revocation bound."""
    now = now_ms()
    for session_id in session_ids:
        await tx.execute_later("UPDATE sessions SET ended_at_ms = %s WHERE id = %s AND ended_at_ms IS NULL",
                               (now, session_id))
        await accounts.revocations.revoke_session(tx, session_id)


async def end_user_sessions(tx: Executor, accounts: Accounts, *, user_id: int, keep: int | None = None) -> int:
    """End every open session of the user but `keep`; how many were ended."""
    # A locking read sees every session committed so far, where a plain one could read the transaction's snapshot
    # from before a login that it then waited for (a password reset or a disable reads first): that session lived on.
    rows = await tx.fetch_all("SELECT id FROM sessions WHERE user_id = %s AND ended_at_ms IS NULL"  # noqa: S608
                              f"{tx.dialect.for_update}", (user_id,))
    ended = [column(r[0], int) for r in rows if column(r[0], int) != keep]
    await end_sessions(tx, accounts, session_ids=ended)
    return len(ended)


async def list_sessions(db: Executor, accounts: Accounts, *, user: Principal) -> list[SessionOut]:
    """The caller's open sessions, newest first."""
    now = now_ms()
    idle_since = utcnow() - dt.timedelta(seconds=accounts.settings.session_idle_timeout)
    rows = await db.fetch_all(
        "SELECT id, device, address, created_at, last_used_at FROM sessions WHERE user_id = %s"
        " AND ended_at_ms IS NULL AND expires_at_ms > %s AND last_used_at > %s ORDER BY id DESC",
        (user.user_id, now, idle_since))
    return [SessionOut(column(r[0], int), column(r[1], str), column(r[2], str), datetime_column(r[3]),
                       datetime_column(r[4]), column(r[0], int) == user.session_id) for r in rows]


async def end_own_session(db: Executor, accounts: Accounts, *, user: Principal, session_id: int) -> None:
    """End one of the caller's sessions; 404 when it is not theirs or already over."""

    async def end(tx: Executor) -> None:
        row = await tx.fetch_one("SELECT id FROM sessions WHERE id = %s AND user_id = %s AND ended_at_ms IS NULL",
                                 (session_id, user.user_id))
        if row is None:
            raise NotFound()
        await end_sessions(tx, accounts, session_ids=[session_id])

    await db.run_transaction(end)


async def end_other_sessions(db: Executor, accounts: Accounts, *, user: Principal) -> int:
    """End every session of the caller but the current one; how many."""

    async def end(tx: Executor) -> int:
        return await end_user_sessions(tx, accounts, user_id=user.user_id, keep=user.session_id)

    return await db.run_transaction(end)


async def log_out(db: Executor, accounts: Accounts, *, user: Principal) -> None:
    """Revoke the caller's token and end its session, so that its refresh token cannot bring it back."""

    async def end(tx: Executor) -> None:
        await accounts.revocations.revoke_token(tx, user)
        if user.session_id is not None:
            await end_sessions(tx, accounts, session_ids=[user.session_id])

    await db.run_transaction(end)
