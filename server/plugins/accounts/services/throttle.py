"""Login throttling: failures per account and per client address, counted in the shared database."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from functools import cache, partial

from server.db import Dialect, Executor, column
from server.errors import ServiceUnavailable, TooManyRequests
from server.services import now_ms


def keys(account: str, address: str) -> tuple[str, str]:
    """The two counters a login attempt touches."""
    return f"account:{account.strip().lower()[:254]}", f"address:{address[:64]}"


TOO_MANY_LOGINS = "too many failed logins, try again later"


async def check(db: Executor, *, account: str, address: str, max_account: int, max_address: int,
                window_seconds: int, counted: bool = False, message: str = TOO_MANY_LOGINS) -> None:
    """429 with Retry-After while either counter is at its limit inside the window (over it, when this
    attempt is already counted)."""
    now = now_ms()
    window_ms = window_seconds * 1000
    account_key, address_key = keys(account, address)
    rows = await db.fetch_all("SELECT k, window_start_ms, failures FROM login_failures WHERE k IN (%s, %s)",
                              (account_key, address_key))
    for key, start_value, failures_value in rows:
        start, failures = column(start_value, int), column(failures_value, int)
        limit = (max_account if key == account_key else max_address) + (1 if counted else 0)
        if start + window_ms > now and failures >= limit:
            retry = max(1, math.ceil((start + window_ms - now) / 1000))
            raise TooManyRequests(message, headers={"Retry-After": str(retry)})


async def count_attempt(db: Executor, *, account: str, address: str, max_account: int, max_address: int,
                        window_seconds: int, message: str = TOO_MANY_LOGINS) -> None:
    """Count an attempt as a failure before the password is checked, then 429 when that puts it over a limit.

    Counting first makes the limit hold for concurrent guesses: checking and counting afterwards
    would let every request that arrives while the others are still hashing through. The count and the
    check of it share one transaction, which holds the counters' rows until it ends: each attempt sees its
    own place in line, so exactly the limit's number of concurrent guesses are checked, on one server as
    across cluster nodes (a certification conflict replays the unit). A refused attempt is not counted."""
    limits = partial(check, account=account, address=address, max_account=max_account,
                     max_address=max_address, window_seconds=window_seconds, message=message)
    await limits(db)

    async def count(tx: Executor) -> None:
        await record_failure(tx, account=account, address=address, window_seconds=window_seconds)
        await limits(tx, counted=True)

    await db.run_transaction(count)


@contextlib.asynccontextmanager
async def attempt(db: Executor, *, account: str, address: str, max_account: int, max_address: int,
                  window_seconds: int, message: str = TOO_MANY_LOGINS) -> AsyncIterator[None]:
    """count_attempt, for the block that checks the password. A block the server could not finish (503: the
    password-hash queue full, the database or the role service away) takes the attempt back: nothing was
    checked, or the check passed, so it is no failed login, and a burst the server refuses for its own load
    must not lock the account or the address. A wrong password or code (401, 403) stays counted."""
    await count_attempt(db, account=account, address=address, max_account=max_account, max_address=max_address,
                        window_seconds=window_seconds, message=message)
    try:
        yield
    except ServiceUnavailable:
        with contextlib.suppress(ServiceUnavailable):  # the database away: the first 503 is the answer
            await take_back_attempt(db, account=account, address=address)
        raise


async def count_request(db: Executor, *, keys: dict[str, int], window_seconds: int) -> None:
    """Count a request (a reset or verification mail asked for) against each key, then 429 with Retry-After
    when that puts one over its limit; a refused request is not counted (the transaction rolls back)."""

    async def count(tx: Executor) -> None:
        now = now_ms()
        window_start = now - window_seconds * 1000
        for key in keys:
            await tx.execute(_count_failure(tx.dialect), (key[:300], now, window_start, window_start))
        placeholders = ", ".join(["%s"] * len(keys))
        rows = await tx.fetch_all(f"SELECT k, window_start_ms, failures FROM login_failures"  # noqa: S608
                                  f" WHERE k IN ({placeholders})", tuple(k[:300] for k in keys))
        for key_value, start_value, count_value in rows:
            if column(count_value, int) > keys.get(column(key_value, str), 0):
                retry = max(1, math.ceil((column(start_value, int) + window_seconds * 1000 - now) / 1000))
                raise TooManyRequests("too many requests for this account or address, try again later",
                                      headers={"Retry-After": str(retry)})

    await db.run_transaction(count)


async def record_failure(db: Executor, *, account: str, address: str, window_seconds: int) -> None:
    """Count one failed login against the account and the address, atomically."""
    now = now_ms()
    window_start = now - window_seconds * 1000
    for key in keys(account, address):
        await db.execute(_count_failure(db.dialect), (key, now, window_start, window_start))


@cache
def _count_failure(dialect: Dialect) -> str:
    """Add one failure to the key's counter, or restart it at one when its window is over (the counter is
    created at one when missing). Both assignments read the row's old window_start_ms."""
    return ("INSERT INTO login_failures (k, window_start_ms, failures) VALUES (%s, %s, 1)"  # noqa: S608
            f"{dialect.on_conflict_update('k')}"
            " failures = CASE WHEN window_start_ms < %s THEN 1 ELSE failures + 1 END,"
            f" window_start_ms = CASE WHEN window_start_ms < %s THEN {dialect.inserted('window_start_ms')}"
            " ELSE window_start_ms END")


async def forgive_attempt(db: Executor, *, account: str, address: str) -> None:
    """A successful login: clear the account's failures and take back the attempt counted against the address."""
    account_key, address_key = keys(account, address)
    await db.execute("DELETE FROM login_failures WHERE k = %s", (account_key,))
    await _uncount(db, address_key)


async def take_back_attempt(db: Executor, *, account: str, address: str) -> None:
    """An attempt the server could not check (see `attempt`): one failure fewer on both counters."""
    await _uncount(db, *keys(account, address))


async def _uncount(db: Executor, *counters: str) -> None:
    placeholders = ", ".join(["%s"] * len(counters))
    await db.execute(f"UPDATE login_failures SET failures = failures - 1 WHERE k IN ({placeholders})"  # noqa: S608
                     " AND failures > 0", counters)
