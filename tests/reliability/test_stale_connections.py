"""Pooled connections the server closed while idle (wait_timeout) never reach a request."""

from __future__ import annotations

import asyncio
from typing import Any

import pymysql
import pytest

from server.config import Config
from tests.conftest import migrated_database
from tests.conftest import test_config as profile
from tests.factories import user_with_token
from tests.reliability.conftest import wide_api

pytestmark = pytest.mark.slow
WAIT_TIMEOUT = 2
CONCURRENCY = 8


@pytest.fixture(params=[600, 1], ids=["recycle-above-wait-timeout", "recycle-below-wait-timeout"])
def config(request: pytest.FixtureRequest, private_mariadb: Any) -> Config:
    # A slow revocation refresh leaves the whole pool idle (it would keep one connection warm).
    return profile(database_url=migrated_database(private_mariadb.url, "stale"), db_pool_recycle=request.param,
                   revocation_refresh_seconds=30)


def server_sessions(server_url: str) -> int:
    """Client sessions of the app's database still open on the server."""
    host, port = server_url.rsplit("@", 1)[1].split(":")
    conn = pymysql.connect(host=host, port=int(port), user="root", password="")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE db = 'stale'")
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("private_mariadb", [[f"--wait-timeout={WAIT_TIMEOUT}"]], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_first_requests_after_the_server_closed_idle_connections_succeed(app, http_server, base_url,
                                                                              private_mariadb):
    api = wide_api(base_url)
    user, token = await user_with_token(app)
    created = await api.post("/v1/pets", json={"name": "Idle", "species": "cat"}, token=token)
    assert created.status == 201
    pet_id = created.body["data"]["id"]
    warm = await asyncio.gather(*(api.get(f"/v1/pets/{pet_id}", token=token) for _ in range(CONCURRENCY)))
    assert all(r.status == 200 for r in warm)
    await app.sync_sequencer.idle()  # the pass the POST nudged may hold a connection for a moment
    in_use, idle = app.db.pool_stats()
    assert in_use == 0 and idle >= 2, (in_use, idle)
    assert server_sessions(private_mariadb.url) >= 2

    await asyncio.sleep(WAIT_TIMEOUT + 1.5)
    assert server_sessions(private_mariadb.url) == 0  # the server really dropped every pooled connection

    answers = await asyncio.gather(
        *(api.get(f"/v1/pets/{pet_id}", token=token) for _ in range(CONCURRENCY)),
        api.get("/v1/health/ready"),
        api.post("/v1/pets", json={"name": "After", "species": "dog"}, token=token),
        api.patch(f"/v1/pets/{pet_id}", json={"status": "adopted"}, token=token))
    statuses = [r.status for r in answers]
    assert statuses == [200] * (CONCURRENCY + 1) + [201, 200], [(r.status, r.body) for r in answers]
    assert all(r.body["data"]["id"] == pet_id for r in answers[:CONCURRENCY])
    assert answers[-1].body["data"]["status"] == "adopted"
    assert answers[-2].body["data"]["owner_id"] == user.id
