"""A registration flood cannot starve logins: the argon2 work waiting for a thread is bounded (the excess is
refused at once with 503/1008 and Retry-After) and verifications go before new hashes; the per-address
registration throttle (tests/plugins/accounts/handlers/test_users.py) stops a flood from one address first."""

from __future__ import annotations

import asyncio
import statistics
import time
from types import SimpleNamespace
from typing import Any

import pytest
from tornado.simple_httpclient import HTTPTimeoutError

from server.passwords import HASH
from tests.factories import PASSWORD, Api, create_user, unique_email
from tests.reliability.conftest import wide_api

PROD_ARGON2 = {"password_hash_time_cost": 3, "password_hash_memory_kib": 65_536}  # argon2-cffi's defaults
NO_REGISTRATION_THROTTLE = {"plugin_settings": {"accounts": {"registrations_per_address": 1_000_000}}}
FLOOD = 120


async def _register(api: Api) -> Any:
    try:
        return await api.post("/v1/users", json={"email": unique_email("flood"), "password": PASSWORD,
                                                 "nickname": "Flood"})
    except HTTPTimeoutError:  # no answer within the client's 30 s
        return SimpleNamespace(status=599, body=None, headers={})


async def _flood(api: Api) -> list[Any]:
    return list(await asyncio.gather(*(_register(api) for _ in range(FLOOD))))


@pytest.mark.parametrize("config_overrides", [{**PROD_ARGON2, **NO_REGISTRATION_THROTTLE,
                                               "password_hash_max_queued": 4, "db_acquire_timeout": 10.0}])
@pytest.mark.gen_test(timeout=180)
async def test_a_flood_beyond_the_hashing_queue_is_refused_at_once_and_a_login_still_succeeds(app, http_server,
                                                                                               base_url):
    user = await create_user(app)
    api = wide_api(base_url, FLOOD + 8)
    flooding = asyncio.ensure_future(_flood(api))
    for _ in range(3000):  # until the hash queue is full: the flood is on
        if app.passwords.queued(HASH) >= app.passwords.max_queued:
            break
        await asyncio.sleep(0.01)
    assert app.passwords.queued(HASH) == app.passwords.max_queued
    login = await api.login(user.email)
    assert login.status == 201, login.body
    assert "users:me" in login.body["data"]["scopes"]
    answers = await flooding
    statuses = [a.status for a in answers]
    assert set(statuses) == {201, 503}, statuses
    for refused in (a for a in answers if a.status == 503):
        assert refused.body == {"error_code": 1008, "message": "too many password hashes waiting, try again later",
                                "request": "POST /v1/users"}
        assert refused.headers["Retry-After"] == str(app.config.retry_after)
    created = await app.db.fetch_one("SELECT COUNT(*) FROM users WHERE nickname = 'Flood'")
    assert created is not None and created[0] == statuses.count(201)  # a refused one wrote nothing
    assert (await api.login(user.email)).status == 201


@pytest.mark.slow
@pytest.mark.parametrize("config_overrides", [
    pytest.param({**PROD_ARGON2, **NO_REGISTRATION_THROTTLE, "db_acquire_timeout": 10.0}, id="queue-bound-only"),
    pytest.param({**PROD_ARGON2, "plugin_settings": {}, "db_acquire_timeout": 10.0}, id="defaults")])
@pytest.mark.gen_test(timeout=300)
async def test_login_latency_during_a_registration_flood(app, http_server, base_url):
    """Figures for the README (not asserted): a real user's login, one after another, while 120 registrations
    arrive at once; with the default settings the per-address throttle also applies (one address floods)."""
    user = await create_user(app)
    api = wide_api(base_url, FLOOD + 8)
    quiet = []
    for _ in range(5):
        started = time.perf_counter()
        assert (await api.login(user.email)).status == 201
        quiet.append(time.perf_counter() - started)
    flooding = asyncio.ensure_future(_flood(api))
    during = []
    while not flooding.done():
        started = time.perf_counter()
        login = await api.login(user.email)
        during.append(time.perf_counter() - started)
        assert login.status == 201, login.body
    statuses = [a.status for a in flooding.result()]
    print(f"\nlogin during {FLOOD} registrations (argon2id t=3, m=64 MiB): idle median "
          f"{statistics.median(quiet) * 1000:.0f} ms; during: {len(during)} logins, median "
          f"{statistics.median(during) * 1000:.0f} ms, max {max(during) * 1000:.0f} ms; registrations: "
          f"{ {s: statuses.count(s) for s in sorted(set(statuses))} } (599: no answer within 30 s)")
