"""Helpers of the reliability tests: connections in use, a private event loop, a wide HTTP client,
a database that refuses revocations."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.factories import Api
from tests.mariadb_server import connect_database


async def connections_in_use(db: Any, *, settle: float = 2.0) -> int:
    """Connections still borrowed once the app's own background work (the revocation refresh, every
    0.2 s in the test profile) has had time to give its one back; a leaked connection never comes back."""
    for _ in range(int(settle / 0.02)):
        if not db.pool_stats()[0]:
            break
        await asyncio.sleep(0.02)
    return db.pool_stats()[0]


def wide_api(base_url: str, max_clients: int = 128) -> Api:
    """A JSON client that really runs max_clients requests at once (the shared one queues after 10)."""
    return Api(AsyncHTTPClient(force_instance=True, max_clients=max_clients), base_url)


@pytest.fixture
def revocations_fail(mysql_url: str) -> Any:
    """While active, the database fails every new row of token_revocations as if the database went away between
    a change and its revocation (a real trigger raising 1927 "connection killed", an outage: 503)."""
    conn = connect_database(mysql_url)

    def arm() -> None:
        with conn.cursor() as cur:
            cur.execute("CREATE TRIGGER refuse_revocations BEFORE INSERT ON token_revocations FOR EACH ROW"
                        " SIGNAL SQLSTATE '08S01' SET MYSQL_ERRNO = 1927, MESSAGE_TEXT = 'revocations unavailable'")

    try:
        yield arm
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS refuse_revocations")
        conn.close()
