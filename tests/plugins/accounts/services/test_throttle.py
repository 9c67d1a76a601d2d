"""Login throttling counters in the shared database, on MariaDB and SQLite."""

import asyncio

import pytest

from server.errors import TooManyRequests
from server.plugins.accounts.services import throttle
from tests.factories import both_backends

pytestmark = both_backends
LIMITS = {"max_account": 3, "max_address": 5, "window_seconds": 60}


async def _counts(app) -> dict[str, int]:
    return {k: n for k, n in await app.db.fetch_all("SELECT k, failures FROM login_failures")}


@pytest.mark.gen_test
async def test_failures_count_per_account_and_address(app):
    for _ in range(2):
        await throttle.record_failure(app.db, account=" Ann@Example.com", address="10.0.0.1", window_seconds=60)
    assert await _counts(app) == {"account:ann@example.com": 2, "address:10.0.0.1": 2}
    await throttle.check(app.db, account="ann@example.com", address="10.0.0.1", **LIMITS)  # under both limits


@pytest.mark.gen_test
async def test_the_account_limit_refuses_with_retry_after(app):
    for _ in range(3):
        await throttle.record_failure(app.db, account="ann@example.com", address="10.0.0.1", window_seconds=60)
    with pytest.raises(TooManyRequests) as caught:
        await throttle.check(app.db, account="ANN@example.com", address="10.0.0.9", **LIMITS)
    assert caught.value.code == 1006
    assert 55 <= int(caught.value.headers["Retry-After"]) <= 60
    await throttle.check(app.db, account="bob@example.com", address="10.0.0.1", **LIMITS)  # others are not locked


@pytest.mark.gen_test
async def test_the_address_limit_covers_every_account(app):
    for i in range(5):
        await throttle.record_failure(app.db, account=f"user{i}@example.com", address="10.0.0.2", window_seconds=60)
    with pytest.raises(TooManyRequests):
        await throttle.check(app.db, account="fresh@example.com", address="10.0.0.2", **LIMITS)
    await throttle.check(app.db, account="fresh@example.com", address="10.0.0.3", **LIMITS)


@pytest.mark.gen_test
async def test_an_expired_window_starts_counting_again(app):
    for _ in range(3):
        await throttle.record_failure(app.db, account="ann@example.com", address="10.0.0.1", window_seconds=60)
    await app.db.execute("UPDATE login_failures SET window_start_ms = window_start_ms - 61000")
    await throttle.check(app.db, account="ann@example.com", address="10.0.0.1", **LIMITS)  # window over
    await throttle.record_failure(app.db, account="ann@example.com", address="10.0.0.1", window_seconds=60)
    assert await _counts(app) == {"account:ann@example.com": 1, "address:10.0.0.1": 1}


@pytest.mark.gen_test
async def test_count_attempt_holds_the_limit_for_concurrent_attempts(app):
    async def attempt() -> bool:
        try:
            await throttle.count_attempt(app.db, account="ann@example.com", address="10.0.0.1", **LIMITS)
        except TooManyRequests:
            return False
        return True

    allowed = await asyncio.gather(*(attempt() for _ in range(12)))
    # Checking before counting let all 12 through; counting and then reading the shared total let fewer than
    # the limit through when the others' counts landed first.
    assert sum(allowed) == LIMITS["max_account"]
    counts = await _counts(app)
    assert counts["account:ann@example.com"] == LIMITS["max_account"]  # the refused ones are not counted


@pytest.mark.gen_test
async def test_a_success_forgives_the_account_and_takes_back_its_address_attempt(app):
    for _ in range(2):
        await throttle.count_attempt(app.db, account="ann@example.com", address="10.0.0.1", **LIMITS)
    await throttle.count_attempt(app.db, account="bob@example.com", address="10.0.0.1", **LIMITS)
    await throttle.forgive_attempt(app.db, account="Bob@example.com", address="10.0.0.1")
    assert await _counts(app) == {"account:ann@example.com": 2, "address:10.0.0.1": 2}
