"""The accounts plugin's periodic purge: rows that no longer do anything go, after a retention that keeps them
for a user's export and an operator's questions (what was sent, which device was signed in).

- sessions ended, expired (refresh_token_expiration) or idle (session_idle_timeout) for `session_retention_days`,
  with their refresh tokens (a replayed token of a purged session answers 401/10031 unknown: it was dead anyway);
- outbox mail sent or given up `outbox_retention_days` ago (a sent body is blanked at once already);
- reset and verification tokens once they expire (nothing would accept them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from server.db import Executor
from server.plugins.accounts.settings import AccountsSettings
from server.services import now_ms, utcnow

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Purged:
    sessions: int
    outbox: int
    account_tokens: int


async def purge_accounts(db: Executor, settings: AccountsSettings) -> Purged:
    """Delete what is past its retention; how many rows of each kind went. Each DELETE is its own statement:
    a round interrupted halfway leaves consistent rows, and the next round finishes."""
    now = now_ms()
    session_cut = now - settings.session_retention_days * DAY_MS
    idle_cut = utcnow() - dt.timedelta(seconds=settings.session_idle_timeout, days=settings.session_retention_days)
    dead = ("(ended_at_ms < %s OR expires_at_ms < %s OR last_used_at < %s)")
    await db.execute(f"DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE {dead})",  # noqa: S608
                     (session_cut, session_cut, idle_cut))
    sessions = await db.execute(f"DELETE FROM sessions WHERE {dead}", (session_cut, session_cut, idle_cut))  # noqa: S608
    mail_cut = now - settings.outbox_retention_days * DAY_MS
    outbox = await db.execute("DELETE FROM outbox WHERE sent_at_ms < %s OR failed_at_ms < %s", (mail_cut, mail_cut))
    tokens = await db.execute("DELETE FROM account_tokens WHERE expires_at_ms < %s", (now,))
    return Purged(sessions.rowcount, outbox.rowcount, tokens.rowcount)
