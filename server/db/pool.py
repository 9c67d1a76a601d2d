"""A FIFO pool of aiomysql connections with bounded waits (the caller bounds them with a timeout)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import aiomysql

from server.errors import ServiceUnavailable
from server.internals import closed_by_server


class Pool:
    """Connections to one server: a free one if any (the most recently used), a new one while under
    maxsize, else a place in line. A released connection goes straight to the longest waiter.

    aiomysql's own pool takes a lock on every acquire, starts a task on every release and lets new
    arrivals overtake waiters (seconds-long tails under load); this one does none of that."""

    def __init__(self, connect: Callable[[], Awaitable[aiomysql.Connection]], *, minsize: int, maxsize: int,
                 recycle: float) -> None:
        self._connect = connect
        self.minsize = minsize
        self.maxsize = max(maxsize, 1)
        self.recycle = recycle
        self.size = 0  # connections open or being opened
        self.closing = False
        self._free: deque[aiomysql.Connection] = deque()
        self._waiters: deque[asyncio.Future[aiomysql.Connection | None]] = deque()
        self._all_back: asyncio.Event | None = None

    @property
    def idle(self) -> int:
        return len(self._free)

    async def fill(self) -> None:
        """Open the first minsize connections."""
        while self.size < self.minsize:
            self.release(await self._open())

    def take_free(self) -> aiomysql.Connection | None:
        """A usable idle connection, without waiting; dead or recycled ones are closed on the way."""
        while self._free:
            conn = self._free.pop()
            if self._usable(conn):
                return conn
            conn.close()
            self._dropped()
        return None

    async def acquire(self) -> aiomysql.Connection:
        """A connection: idle, newly opened, or the next one released. Bound it with a timeout."""
        while True:
            if self.closing:
                raise ServiceUnavailable("the database pool is closed")
            conn = self.take_free()
            if conn is not None:
                return conn
            if self.size < self.maxsize:
                return await self._open()
            waiter: asyncio.Future[aiomysql.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except BaseException:  # timed out or cancelled; a connection handed over just now goes back
                handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
                if handed is not None:
                    self.release(handed)
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            if conn is not None:
                return conn
            # None: a connection was dropped, so there is room to open one; try again

    def release(self, conn: aiomysql.Connection) -> None:
        """Give the connection back: to the longest waiter, else to the idle list; a broken one is closed."""
        if self.closing or conn.closed or conn.get_transaction_status():
            conn.close()
            self._dropped()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._free.append(conn)

    async def close(self) -> None:
        """Close idle connections now and the others as they come back; wait for them."""
        self.closing = True
        while self._free:
            self._free.pop().close()
            self.size -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it sees closing and gives up
        if self.size > 0:
            self._all_back = asyncio.Event()
            await self._all_back.wait()

    async def _open(self) -> aiomysql.Connection:
        self.size += 1
        try:
            return await self._connect()
        except BaseException:
            self._dropped()
            raise

    def _dropped(self) -> None:
        self.size -= 1
        while self._waiters:  # room for one more connection: the longest waiter opens it
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if self.closing and self.size == 0 and self._all_back is not None:
            self._all_back.set()

    def _usable(self, conn: aiomysql.Connection) -> bool:
        if conn.closed or closed_by_server(conn):
            return False
        return not (self.recycle > -1 and conn.loop.time() - conn.last_usage > self.recycle)
