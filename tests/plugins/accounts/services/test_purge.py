"""The accounts plugin's periodic purge, on MariaDB and SQLite: ended, expired and idle sessions (with their refresh
tokens), old sent or given-up mail and expired reset/verification tokens go after their age; live rows stay."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from server.plugins.accounts.services.purge import DAY_MS, purge_accounts
from server.services import now_ms, utcnow
from tests.factories import both_backends, create_user

pytestmark = both_backends
RETENTION_DAYS = 30  # the default session_retention_days
OUTBOX_DAYS = 7  # the default outbox_retention_days


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"plugin_settings": {"accounts": {"purge_interval_seconds": 0.05}}}


async def _ids(app: Any, sql: str) -> set[Any]:
    return {row[0] for row in await app.db.fetch_all(sql)}


async def _sessions(api: Any, app: Any, count: int) -> list[int]:
    user = await create_user(app)
    for _ in range(count):
        assert (await api.login(user.email)).status == 201
    return sorted(await _ids(app, f"SELECT id FROM sessions WHERE user_id = {user.id}"))  # noqa: S608


@pytest.mark.gen_test(timeout=30)
async def test_sessions_mail_and_tokens_go_after_their_age_and_live_ones_stay(api, app):
    await asyncio.sleep(0.1)  # the background purge has had its first round: what is left below is this test's
    now = now_ms()
    old = now - (RETENTION_DAYS + 1) * DAY_MS
    recent = now - DAY_MS
    sessions = await _sessions(api, app, 5)
    assert set(sessions) == await _ids(app, "SELECT session_id FROM refresh_tokens")  # each login left its token
    ended_long_ago, ended_lately, live, expired_long_ago, idle_long_ago = sessions
    settings = app.plugin_settings["accounts"]
    idle_since = utcnow() - dt.timedelta(seconds=settings.session_idle_timeout, days=RETENTION_DAYS + 1)
    await app.db.execute("UPDATE sessions SET ended_at_ms = %s WHERE id = %s", (old, ended_long_ago))
    await app.db.execute("UPDATE sessions SET ended_at_ms = %s WHERE id = %s", (recent, ended_lately))
    await app.db.execute("UPDATE sessions SET expires_at_ms = %s WHERE id = %s", (old, expired_long_ago))
    await app.db.execute("UPDATE sessions SET last_used_at = %s WHERE id = %s", (idle_since, idle_long_ago))

    user = await create_user(app)
    mail_old, mail_recent = now - (OUTBOX_DAYS + 1) * DAY_MS, now - DAY_MS
    outbox = {"sent long ago": (mail_old, None), "sent lately": (mail_recent, None),
              "given up long ago": (None, mail_old), "waiting since long ago": (None, None)}
    for subject, (sent, failed) in outbox.items():
        await app.db.execute("INSERT INTO outbox (user_id, recipient, subject, body, created_at, next_attempt_ms,"
                             " sent_at_ms, failed_at_ms) VALUES (%s, %s, %s, '', %s, %s, %s, %s)",
                             (user.id, user.email, subject, utcnow() - dt.timedelta(days=30), mail_old, sent, failed))
    for name, expires in (("expired", now - 1000), ("live", now + 60_000)):
        await app.db.execute("INSERT INTO account_tokens (token_hash, purpose, user_id, created_at_ms, expires_at_ms)"
                             " VALUES (%s, 'reset', %s, %s, %s)", (name, user.id, now - 120_000, expires))

    await purge_accounts(app.db, settings)  # the background round may have been first: the same rows go
    assert await _ids(app, "SELECT id FROM sessions") >= {ended_lately, live}
    assert not await _ids(app, "SELECT id FROM sessions") & {ended_long_ago, expired_long_ago, idle_long_ago}
    assert not await _ids(app, "SELECT session_id FROM refresh_tokens") & {ended_long_ago, expired_long_ago,
                                                                           idle_long_ago}
    assert {ended_lately, live} <= await _ids(app, "SELECT session_id FROM refresh_tokens")
    assert await _ids(app, "SELECT subject FROM outbox") == {"sent lately", "waiting since long ago"}
    assert await _ids(app, "SELECT token_hash FROM account_tokens") == {"live"}


@pytest.mark.gen_test(timeout=30)
async def test_the_purge_runs_in_the_background_of_every_worker(app):
    user = await create_user(app)
    await app.db.execute("INSERT INTO account_tokens (token_hash, purpose, user_id, created_at_ms, expires_at_ms)"
                         " VALUES ('gone-soon', 'verify', %s, %s, %s)", (user.id, now_ms() - 2000, now_ms() - 1000))
    for _ in range(100):  # purge_interval_seconds is 0.05 here
        if not await _ids(app, "SELECT token_hash FROM account_tokens"):
            break
        await asyncio.sleep(0.05)
    assert await _ids(app, "SELECT token_hash FROM account_tokens") == set()
