"""The FIFO connection pool: waiters are served in arrival order, a released connection goes to the longest
waiter, nobody who gave up keeps one, and a dropped connection makes room for a new one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiomysql
import pytest

from server.db.pool import Pool
from server.db.url import parse_url
from server.errors import ServiceUnavailable
from tests.mariadb_server import create_database


@pytest.fixture
def connect(mysql_server_url: str) -> Callable[[], Awaitable[aiomysql.Connection]]:
    url = parse_url(create_database(mysql_server_url, "pet_api_pool"))

    def opener() -> Awaitable[aiomysql.Connection]:
        return aiomysql.connect(host=url.host, port=url.port, user=url.user, password=url.password,
                                db=url.database, autocommit=True)

    return opener


async def _waiting(pool: Pool, count: int) -> None:
    """Until `count` acquirers are in line (they queue at their first await)."""
    for _ in range(100):
        if len(pool._waiters) == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(pool._waiters)} waiting, expected {count}")


@pytest.mark.gen_test(timeout=30)
async def test_waiters_get_the_connection_in_arrival_order(connect):
    pool = Pool(connect, minsize=1, maxsize=1, recycle=-1)
    await pool.fill()
    held = await pool.acquire()
    served: list[int] = []

    async def waiter(n: int) -> None:
        conn = await pool.acquire()
        served.append(n)
        await asyncio.sleep(0)
        pool.release(conn)

    tasks = []
    for n in range(4):
        tasks.append(asyncio.ensure_future(waiter(n)))
        await _waiting(pool, n + 1)
    pool.release(held)
    late = await pool.acquire()  # arrives after all four: must not overtake them
    assert served == [0, 1, 2, 3]
    pool.release(late)
    await asyncio.gather(*tasks)
    assert (pool.size, pool.idle) == (1, 1)  # never more than maxsize
    await pool.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_waiter_that_gave_up_leaves_the_line_and_keeps_nothing(connect):
    pool = Pool(connect, minsize=0, maxsize=1, recycle=-1)
    held = await pool.acquire()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await pool.acquire()
    assert len(pool._waiters) == 0
    patient = asyncio.ensure_future(pool.acquire())
    await _waiting(pool, 1)
    pool.release(held)
    assert await patient is held
    pool.release(held)
    assert (pool.size, pool.idle) == (1, 1)
    await pool.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_connection_handed_to_a_waiter_cancelled_before_it_ran_goes_back(connect):
    pool = Pool(connect, minsize=0, maxsize=1, recycle=-1)
    held = await pool.acquire()
    first = asyncio.ensure_future(pool.acquire())
    await _waiting(pool, 1)
    second = asyncio.ensure_future(pool.acquire())
    await _waiting(pool, 2)
    pool.release(held)  # handed to `first`, which has not run yet...
    first.cancel()  # ...and is cancelled (a request timing out) before it does
    assert await second is held  # the connection moved on instead of leaking
    with pytest.raises(asyncio.CancelledError):
        await first
    pool.release(held)
    assert (pool.size, pool.idle) == (1, 1)
    await pool.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_dropped_connection_makes_room_for_the_next_waiter(connect):
    pool = Pool(connect, minsize=0, maxsize=1, recycle=-1)
    broken = await pool.acquire()
    waiter = asyncio.ensure_future(pool.acquire())
    await _waiting(pool, 1)
    broken.close()  # the link failed while in use
    pool.release(broken)
    fresh = await waiter
    assert fresh is not broken and not fresh.closed
    async with fresh.cursor() as cur:
        await cur.execute("SELECT 1")
        assert await cur.fetchone() == (1,)
    pool.release(fresh)
    assert (pool.size, pool.idle) == (1, 1)
    await pool.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_connection_left_in_a_transaction_is_closed_not_reused(connect):
    pool = Pool(connect, minsize=0, maxsize=2, recycle=-1)
    conn = await pool.acquire()
    async with conn.cursor() as cur:
        await cur.execute("BEGIN")
    pool.release(conn)
    assert conn.closed and (pool.size, pool.idle) == (0, 0)
    await pool.close()


@pytest.mark.gen_test(timeout=30)
async def test_recycled_connections_are_replaced_and_closing_refuses_new_work(connect):
    pool = Pool(connect, minsize=1, maxsize=2, recycle=0)  # every idle connection is too old at once
    await pool.fill()
    old = pool._free[0]
    await asyncio.sleep(0.01)
    conn = await pool.acquire()
    assert conn is not old and old.closed
    closing = asyncio.ensure_future(pool.close())  # waits for the connection in use
    await asyncio.sleep(0.01)
    assert not closing.done()
    with pytest.raises(ServiceUnavailable):
        await pool.acquire()
    pool.release(conn)
    await closing
    assert conn.closed and pool.size == 0
