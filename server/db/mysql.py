"""aiomysql connections in a small FIFO pool with bounded waits: a database that is gone becomes
ServiceUnavailable, never a hang."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiomysql
import pymysql.err

from server.db import DatabaseURL, ExecResult, IntegrityViolation, Params, Row
from server.errors import ServiceUnavailable

log = logging.getLogger("pet_api.db")

# Errors meaning "the server or the link is the problem", not the statement.
UNAVAILABLE = (pymysql.err.OperationalError, pymysql.err.InterfaceError, TimeoutError, OSError,
               ConnectionError)
GONE_BEFORE_SENT = {2006}  # "server has gone away": the statement never reached the server
FETCH_NONE, FETCH_ONE, FETCH_ALL = 0, 1, 2


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
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self.release(waiter.result())  # type: ignore[arg-type]
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
        reader = conn._reader  # the server closing an idle link shows here (as in aiomysql's own pool)
        if conn.closed or reader.at_eof() or reader.exception() is not None or reader.eof_received:
            return False
        return not (self.recycle > -1 and conn.loop.time() - conn.last_usage > self.recycle)


async def _statement(conn: aiomysql.Connection, sql: str, params: Params, fetch: int, seconds: float,
                     echo: bool) -> Any:
    """Run one statement, bounded by the statement timeout (seconds)."""
    if echo:
        log.debug("sql", extra={"sql": sql})
    async with asyncio.timeout(seconds):
        cur = await conn.cursor()
        try:
            await cur.execute(sql, params or None)
            if fetch == FETCH_ONE:
                return await cur.fetchone()
            if fetch == FETCH_ALL:
                return await cur.fetchall()
            return ExecResult(cur.rowcount, cur.lastrowid)
        finally:
            await cur.close()


def _abandon(task: asyncio.Future[aiomysql.Connection]) -> None:
    """Stop waiting for a connection being opened; if it opens all the same, close it."""
    task.cancel()

    def close(done: asyncio.Future[aiomysql.Connection]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().close()

    task.add_done_callback(close)


class _Connection:
    """One acquired connection (a transaction's); every statement bounded by the statement timeout."""

    dialect = "mysql"

    def __init__(self, conn: aiomysql.Connection, timeout: float, echo: bool) -> None:
        self.conn = conn
        self.timeout = timeout
        self.echo = echo

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return await _statement(self.conn, sql, params, FETCH_ONE, self.timeout, self.echo)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await _statement(self.conn, sql, params, FETCH_ALL, self.timeout, self.echo))

    async def execute(self, sql: str, params: Params = ()) -> ExecResult:
        return await _statement(self.conn, sql, params, FETCH_NONE, self.timeout, self.echo)


class MySQLDatabase:
    """The pool; single statements borrow a connection, transactions hold one."""

    dialect = "mysql"

    def __init__(self, url: DatabaseURL, config: Any) -> None:
        self.url = url
        self.config = config
        self.pool = Pool(self._connect, minsize=config.db_pool_min, maxsize=config.db_pool_max,
                         recycle=config.db_pool_recycle)

    @classmethod
    async def open(cls, url: DatabaseURL, config: Any) -> MySQLDatabase:
        """The database with its first connections open, or ServiceUnavailable."""
        db = cls(url, config)
        try:
            async with asyncio.timeout(config.db_connect_timeout + 1):
                await db.pool.fill()
        except UNAVAILABLE as exc:
            await db.pool.close()
            raise ServiceUnavailable(headers={"Retry-After": str(config.retry_after)}) from exc
        return db

    async def _connect(self) -> aiomysql.Connection:
        """A new connection (TCP, greeting, login, init command) within db_connect_timeout, bounded by
        asyncio.wait rather than by cancelling aiomysql: its asyncio.wait_for (Python 3.11) can swallow a
        cancellation that lands as the TCP connect completes (a SYN retransmitted at 1 s meets a 1 s timeout),
        and the greeting is then awaited with no deadline: a frozen server held requests for seconds."""
        u, c = self.url, self.config
        task = asyncio.ensure_future(aiomysql.connect(
            host=u.host, port=u.port, user=u.user, password=u.password, db=u.database, charset="utf8mb4",
            autocommit=True, connect_timeout=c.db_connect_timeout, init_command="SET time_zone = '+00:00'"))
        try:
            done, _ = await asyncio.wait({task}, timeout=c.db_connect_timeout)
        except BaseException:  # the acquire timed out or the request went away
            _abandon(task)
            raise
        if not done:
            _abandon(task)
            raise TimeoutError("no database connection within db_connect_timeout")
        return task.result()

    def _unavailable(self, exc: BaseException) -> ServiceUnavailable:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return ServiceUnavailable(headers={"Retry-After": str(self.config.retry_after)})

    async def _acquire(self) -> aiomysql.Connection:
        conn = self.pool.take_free()  # the common case: no wait, so no timer either
        if conn is not None:
            return conn
        try:
            async with asyncio.timeout(self.config.db_acquire_timeout):
                return await self.pool.acquire()
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def _failure(self, conn: aiomysql.Connection, exc: BaseException) -> BaseException:
        """What a statement's exception becomes; a link that failed is closed, never pooled again."""
        if isinstance(exc, pymysql.err.IntegrityError):
            return IntegrityViolation(str(exc))
        if isinstance(exc, UNAVAILABLE):
            conn.close()
            return self._unavailable(exc)
        if isinstance(exc, asyncio.CancelledError):
            conn.close()  # the client left mid-statement: the reply may still be in flight
        return exc

    async def _single(self, sql: str, params: Params, fetch: int) -> Any:
        """One statement on a borrowed connection, retried once when it never reached the server."""
        c = self.config
        for attempt in (1, 2):
            conn = await self._acquire()
            try:
                return await _statement(conn, sql, params, fetch, c.db_statement_timeout, c.sql_echo)
            except BaseException as exc:
                failure = self._failure(conn, exc)
                if (attempt == 1 and isinstance(exc, pymysql.err.OperationalError) and exc.args
                        and exc.args[0] in GONE_BEFORE_SENT):
                    continue
                if failure is exc:
                    raise
                raise failure from exc
            finally:
                self.pool.release(conn)
        raise AssertionError("unreachable")

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return await self._single(sql, params, FETCH_ONE)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._single(sql, params, FETCH_ALL))

    async def execute(self, sql: str, params: Params = ()) -> ExecResult:
        return await self._single(sql, params, FETCH_NONE)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Connection]:
        conn = await self._acquire()
        tx = _Connection(conn, self.config.db_statement_timeout, self.config.sql_echo)
        try:
            await tx.execute("BEGIN")
            try:
                yield tx
            except BaseException:
                if not conn.closed:
                    try:
                        await tx.execute("ROLLBACK")
                    except UNAVAILABLE:
                        conn.close()
                raise
            await tx.execute("COMMIT")
        except BaseException as exc:
            failure = self._failure(conn, exc)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            self.pool.release(conn)

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1")

    async def close(self) -> None:
        await self.pool.close()

    def pool_stats(self) -> tuple[int, int]:
        """(in use, idle) connections."""
        return self.pool.size - self.pool.idle, self.pool.idle
