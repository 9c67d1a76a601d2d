"""Token revocation shared by every worker and instance through the database, cached per process.

The cache is refreshed every `revocation_refresh_seconds`; that is the bound on how long another
worker may still accept a token revoked elsewhere. The worker that revokes knows at once. A round
finding that nothing was checked since the previous one skips its read (an idle worker issues no
statements); the next check first catches up, so the bound holds after a pause too. When
the cache cannot be refreshed for a while, an authenticated request first catches up itself (one
refresh shared by every request waiting on it), and fails with 503 rather than open when that fails
too: once the database is back, the next request passes without waiting for the background round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from server import periodic
from server.auth import Principal
from server.db import Database, Executor, column, nullable
from server.errors import ServiceUnavailable, TokenRevoked
from server.services import now_ms

log = logging.getLogger("pet_api.auth")
OVERLAP = 64  # re-read this many ids back: auto-increment ids may commit out of order


def session_key(session_id: int) -> str:
    """The revoked-id entry that ends every access token of a session. Token ids are URL-safe base64, so
    they never contain the colon and the two kinds of entry cannot collide."""
    return f"session:{session_id}"


class RevocationCache:
    """Revoked token ids and per-user 'not before' times, mirrored from token_revocations."""

    def __init__(self, *, refresh_seconds: float, token_expiration: int) -> None:
        self.refresh_seconds = refresh_seconds
        self.token_expiration_ms = token_expiration * 1000
        self.max_staleness = max(5.0, 10 * refresh_seconds)
        self.jtis: dict[str, int] = {}
        self.not_before: dict[int, int] = {}
        self.last_id = 0
        self.refreshed_at = 0.0
        self.checked = False  # a token was checked since the last background round
        self.skipped = False  # the last background round did not read (nothing was checked): catch up first
        self._task: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Future[None] | None = None

    @property
    def stale(self) -> bool:
        """Not refreshed for longer than max_staleness: it may miss revocations made elsewhere."""
        return time.monotonic() - self.refreshed_at > self.max_staleness

    @property
    def behind(self) -> bool:
        """Possibly older than the refresh interval: stale, or the background round skipped its read."""
        return self.skipped or self.stale

    async def catch_up(self, db: Database) -> None:
        """Refresh now if behind; concurrent callers share one refresh. A failure leaves it behind (check() answers
        503 once it is stale)."""
        if not self.behind:
            return
        if self._catching_up is None:
            self._catching_up = asyncio.ensure_future(self.refresh(db))
            self._catching_up.add_done_callback(self._caught_up)
        with contextlib.suppress(Exception):
            await asyncio.shield(self._catching_up)

    def _caught_up(self, done: asyncio.Future[None]) -> None:
        self._catching_up = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("revocation refresh failed: %s", done.exception().__class__.__name__)

    def check(self, principal: Principal) -> None:
        """Raise TokenRevoked when the token or all of its user's earlier tokens were revoked."""
        self.checked = True
        if self.stale:
            raise ServiceUnavailable("revocation list is stale", headers={"Retry-After": "5"})
        if principal.jti in self.jtis:
            raise TokenRevoked()
        if principal.session_id is not None and session_key(principal.session_id) in self.jtis:
            raise TokenRevoked()
        cutoff = self.not_before.get(principal.user_id)
        if cutoff is not None and principal.issued_at_ms < cutoff:
            raise TokenRevoked()

    async def refresh(self, db: Database) -> None:
        """Pull revocations added since the last refresh and drop expired ones."""
        now = now_ms()
        rows = await db.fetch_all(
            "SELECT id, jti, user_id, not_before_ms, expires_at_ms FROM token_revocations"
            " WHERE id > %s AND expires_at_ms > %s ORDER BY id", (max(0, self.last_id - OVERLAP), now))
        for row_id, jti, user_id, not_before, expires in rows:
            self._remember(nullable(jti, str), nullable(user_id, int), nullable(not_before, int), column(expires, int))
            self.last_id = max(self.last_id, column(row_id, int))
        self.jtis = {j: e for j, e in self.jtis.items() if e > now}
        self.not_before = {u: t for u, t in self.not_before.items() if t + self.token_expiration_ms > now}
        self.refreshed_at = time.monotonic()
        self.skipped = False

    def _remember(self, jti: str | None, user_id: int | None, not_before: int | None, expires: int) -> None:
        if jti:
            self.jtis[jti] = expires
        elif user_id is not None and not_before is not None:
            self.not_before[user_id] = max(self.not_before.get(user_id, 0), not_before)

    async def revoke_token(self, db: Executor, principal: Principal) -> None:
        """Revoke one token everywhere."""
        await self.revoke_jti(db, principal.jti, expires_at_ms=int(principal.expires_at * 1000) + 1000)

    async def revoke_jti(self, db: Executor, jti: str, *, expires_at_ms: int) -> None:
        """Revoke the token with this id everywhere (kept until the token would have expired anyway)."""
        await db.execute_later("INSERT INTO token_revocations (jti, expires_at_ms) VALUES (%s, %s)",
                               (jti, expires_at_ms))
        self._remember(jti, None, None, expires_at_ms)

    async def revoke_session(self, db: Executor, session_id: int) -> None:
        """Revoke every access token of the session, everywhere (its refresh tokens are ended in the database)."""
        await self.revoke_jti(db, session_key(session_id), expires_at_ms=now_ms() + self.token_expiration_ms + 1000)

    async def revoke_user(self, db: Executor, user_id: int) -> int:
        """Revoke every token of the user issued before now; returns the cut-off (ms)."""
        cutoff = now_ms() + 1
        await db.execute_later("INSERT INTO token_revocations (user_id, not_before_ms, expires_at_ms)"
                               " VALUES (%s, %s, %s)", (user_id, cutoff, cutoff + self.token_expiration_ms + 1000))
        self._remember(None, user_id, cutoff, 0)
        return cutoff

    async def purge(self, db: Database) -> None:
        """Delete rows whose tokens have expired anyway."""
        await db.execute("DELETE FROM token_revocations WHERE expires_at_ms < %s", (now_ms() - 60_000,))

    def start(self, db: Database) -> None:
        """Keep refreshing in the background."""
        cycles = 0

        async def refresh() -> None:
            nonlocal cycles
            if not self.checked:  # idle: nobody to protect until the next check, which catches up first
                self.skipped = True
                return
            self.checked = False
            await self.refresh(db)
            cycles += 1
            if cycles % 1000 == 0:
                await self.purge(db)

        # The database away: keep the last copy, fail closed when too old.
        self._task = periodic.start_every(lambda: self.refresh_seconds, refresh,
                                          periodic.warn_failed(log, "revocation refresh"))

    async def stop(self) -> None:
        """Stop the background refresh."""
        await periodic.stop(self._task)
