"""Login abuse: no timing oracle for which accounts exist, throttling per account and per address (also
against a concurrent burst), and argon2 never stalls the event loop."""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import threading
import time

import pytest

from tests.factories import PASSWORD, Api, Response, create_user, unique_email
from tests.reliability.conftest import wide_api

NO_THROTTLE = {"login_max_failures": 100_000, "login_max_failures_per_address": 100_000,
               "password_hash_max_queued": 64}  # 50 logins at once all wait for a thread
PROD_ARGON2 = {"password_hash_time_cost": 3, "password_hash_memory_kib": 65_536}  # argon2-cffi's defaults


async def _timed_login(api: Api, account: str, secret: str) -> tuple[float, Response]:
    started = time.perf_counter()
    response = await api.login(account, secret)
    return time.perf_counter() - started, response


@pytest.mark.slow
@pytest.mark.parametrize("config_overrides", [{**NO_THROTTLE, **PROD_ARGON2}])
@pytest.mark.gen_test(timeout=120)
async def test_wrong_password_and_unknown_account_take_the_same_time(app, api):
    user = await create_user(app, email="known@example.com")
    rng = random.Random(9)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for n in range(55):
        pair = [("known", user.email), ("unknown", f"nobody{n}@example.com")]
        rng.shuffle(pair)  # neither kind always goes first
        for kind, account in pair:
            seconds, response = await _timed_login(api, account, "wrong-password")
            assert (response.status, response.body["error_code"]) == (401, 1003)
            assert response.body["message"] == "wrong account or password"
            if n >= 5:  # the first few warm caches (and build the dummy hash)
                timings[kind].append(seconds)
    known, unknown = statistics.median(timings["known"]), statistics.median(timings["unknown"])
    difference = abs(known - unknown) / max(known, unknown)
    assert difference < 0.20, (known, unknown)
    print(f"\nlogin timing, median of 50: wrong password {known * 1000:.1f} ms, unknown account "
          f"{unknown * 1000:.1f} ms: {difference:.1%} apart (argon2id t=3, m=64 MiB)")


@pytest.mark.gen_test(timeout=60)
async def test_failed_logins_are_throttled_per_account(app, api):
    limit = app.config.login_max_failures
    await create_user(app, email="victim@example.com")
    for account in ("victim@example.com", "ghost@example.com"):  # an unknown account is throttled alike
        for _ in range(limit):
            response = await api.login(account, "wrong-password")
            assert (response.status, response.body["error_code"]) == (401, 1003)
        for secret in ("wrong-password", PASSWORD):  # now even the right password waits
            response = await api.login(account, secret)
            assert (response.status, response.body["error_code"]) == (429, 1006), response.body
            assert 0 < int(response.headers["Retry-After"]) <= app.config.login_window_seconds
    other = await create_user(app)  # the same client address may still try other accounts
    response = await api.login(other.email, PASSWORD)
    assert response.status == 201


@pytest.mark.gen_test(timeout=60)
async def test_a_successful_login_forgives_the_accounts_failures(app, api):
    limit = app.config.login_max_failures
    await create_user(app, email="forgetful@example.com")
    for _ in range(2):
        for _ in range(limit - 1):
            response = await api.login("forgetful@example.com", "wrong-password")
            assert response.status == 401
        response = await api.login("forgetful@example.com", PASSWORD)
        assert response.status == 201, response.body


@pytest.mark.parametrize("config_overrides", [{"login_max_failures_per_address": 5}])
@pytest.mark.gen_test(timeout=60)
async def test_failed_logins_are_throttled_per_address(app, api):
    for n in range(5):
        response = await api.login(unique_email("spray"), f"guess-{n}")
        assert response.status == 401
    user = await create_user(app)
    response = await api.login(user.email, PASSWORD)
    assert (response.status, response.body["error_code"]) == (429, 1006)
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.gen_test(timeout=60)
async def test_a_concurrent_burst_gets_no_more_guesses_than_the_limit(app, http_server, base_url):
    limit = app.config.login_max_failures
    await create_user(app, email="burst@example.com")
    api = wide_api(base_url, 50)
    answers = await asyncio.gather(*(api.login("burst@example.com", f"guess-{n}") for n in range(50)))
    statuses = [response.status for response in answers]
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= limit, f"{statuses.count(401)} guesses checked, limit {limit}"


@pytest.mark.slow
@pytest.mark.parametrize("config_overrides", [{**NO_THROTTLE, **PROD_ARGON2}])
@pytest.mark.gen_test(timeout=120)
async def test_concurrent_logins_never_stall_the_event_loop(app, http_server, base_url, monkeypatch):
    """Every callback the loop runs is timed in CPU seconds of the loop's thread: that is how long code on
    the loop held it (an argon2 hash there would be one callback of ~100+ ms). Whole loop turns are not the
    measure: one turn may run the callbacks of all 50 clients arriving at once, and on a shared 2-core
    machine their sum says more about the load than about blocking. Wall-clock lateness is only reported.
    The heap the earlier tests left is frozen first: a full garbage collection of it, landing in one callback,
    took 200 ms of CPU in a full run and says nothing about this server."""
    users = [await create_user(app) for _ in range(5)]
    api = wide_api(base_url, 50)
    loop_thread = threading.get_ident()
    longest = [0.0]
    run = asyncio.events.Handle._run

    def timed_run(handle: asyncio.events.Handle) -> None:
        if threading.get_ident() != loop_thread:
            return run(handle)
        cpu = time.thread_time()
        try:
            return run(handle)
        finally:
            longest[0] = max(longest[0], time.thread_time() - cpu)

    lateness: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        interval = 0.005
        while not stop.is_set():
            wall = time.perf_counter()
            await asyncio.sleep(interval)
            lateness.append(time.perf_counter() - wall - interval)

    gc.collect()
    gc.freeze()
    try:
        monkeypatch.setattr(asyncio.events.Handle, "_run", timed_run)
        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        answers = await asyncio.gather(*(
            api.login(users[n % 5].email, PASSWORD if n % 2 else "wrong-password") for n in range(50)))
        elapsed = time.perf_counter() - started
        stop.set()
        await ticking
        monkeypatch.undo()
    finally:
        gc.unfreeze()
    assert sorted({response.status for response in answers}) == [201, 401]
    assert len(lateness) > 20
    worst = longest[0]
    assert worst < 0.050, f"one callback held the event loop {worst * 1000:.0f} ms"
    lateness.sort()
    print(f"\n50 concurrent logins (argon2id t=3, m=64 MiB) in {elapsed:.2f} s: longest event-loop stall "
          f"{worst * 1000:.1f} ms of CPU in one callback; tick lateness p50 {lateness[len(lateness) // 2] * 1000:.1f}"
          f" ms, max {lateness[-1] * 1000:.1f} ms (OS scheduling included)")
