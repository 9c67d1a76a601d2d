"""MariaDB through aiomysql: bounded connects and statements, failures mapped to ServiceUnavailable (a
database that is gone becomes a 503, never a hang), connections in the FIFO pool."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, TypeVar

import aiomysql
import pymysql.err

from server.db import Params
from server.db.dialect import MYSQL
from server.db.pool import Pool
from server.db.runner import Fetch, Statements
from server.db.url import DatabaseURL
from server.errors import ServiceUnavailable

if TYPE_CHECKING:
    from server.config import Config

log = logging.getLogger("pet_api.db")
T = TypeVar("T")

# Errors meaning "the server or the link is the problem", not the statement.
UNAVAILABLE = (pymysql.err.OperationalError, pymysql.err.InterfaceError, TimeoutError, OSError,
               ConnectionError)
GONE_BEFORE_SENT = {2006}  # "server has gone away": the statement never reached the server


async def open_connection(url: DatabaseURL, config: Config) -> aiomysql.Connection:
    """A new connection (TCP, greeting, login, init command) within db_connect_timeout, bounded by
    asyncio.wait rather than by cancelling aiomysql: its asyncio.wait_for (Python 3.11) can swallow a
    cancellation that lands as the TCP connect completes (a SYN retransmitted at 1 s meets a 1 s timeout),
    and the greeting is then awaited with no deadline: a frozen server held requests for seconds."""
    task = asyncio.ensure_future(aiomysql.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, db=url.database, charset="utf8mb4",
        autocommit=True, connect_timeout=config.db_connect_timeout, init_command="SET time_zone = '+00:00'"))
    try:
        done, _ = await asyncio.wait({task}, timeout=config.db_connect_timeout)
    except BaseException:  # the acquire timed out or the request went away
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise TimeoutError("no database connection within db_connect_timeout")
    return task.result()


def _abandon(task: asyncio.Future[aiomysql.Connection]) -> None:
    """Stop waiting for a connection being opened; if it opens all the same, close it."""
    task.cancel()

    def close(done: asyncio.Future[aiomysql.Connection]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().close()

    task.add_done_callback(close)


class MySQLDriver:
    """The pool; every statement bounded by db_statement_timeout, every wait for a connection by
    db_acquire_timeout."""

    dialect = MYSQL
    integrity_error = pymysql.err.IntegrityError

    def __init__(self, url: DatabaseURL, config: Config) -> None:
        self.url = url
        self.config = config
        self.statement_timeout: float | None = config.db_statement_timeout
        self.pool = Pool(self._connect, minsize=config.db_pool_min, maxsize=config.db_pool_max,
                         recycle=config.db_pool_recycle)

    async def _connect(self) -> aiomysql.Connection:
        return await open_connection(self.url, self.config)

    async def fill(self) -> None:
        """Open the first connections, or ServiceUnavailable."""
        try:
            async with asyncio.timeout(self.config.db_connect_timeout + 1):
                await self.pool.fill()
        except UNAVAILABLE as exc:
            await self.pool.close()
            raise ServiceUnavailable(headers={"Retry-After": str(self.config.retry_after)}) from exc

    async def acquire(self) -> aiomysql.Connection:
        conn = self.pool.take_free()  # the common case: no wait, so no timer either
        if conn is not None:
            return conn
        try:
            async with asyncio.timeout(self.config.db_acquire_timeout):
                return await self.pool.acquire()
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def release(self, conn: aiomysql.Connection) -> None:
        self.pool.release(conn)

    async def run(self, conn: aiomysql.Connection, sql: str, params: Params, fetch: Fetch[T]) -> T:
        async with asyncio.timeout(self.statement_timeout):
            cur = await conn.cursor()
            try:
                await cur.execute(sql, params or None)
                return await fetch(cur)
            finally:
                await cur.close()

    def failure(self, conn: aiomysql.Connection, exc: BaseException) -> BaseException:
        """What a statement's exception becomes; a link that failed is closed, never pooled again."""
        if isinstance(exc, UNAVAILABLE):
            conn.close()
            return self._unavailable(exc)
        if isinstance(exc, asyncio.CancelledError):
            conn.close()  # the client left mid-statement: the reply may still be in flight
        return exc

    def never_sent(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in GONE_BEFORE_SENT

    def open(self, conn: aiomysql.Connection) -> bool:
        return not conn.closed

    async def close(self) -> None:
        await self.pool.close()

    def pool_stats(self) -> tuple[int, int]:
        return self.pool.size - self.pool.idle, self.pool.idle

    def _unavailable(self, exc: BaseException) -> ServiceUnavailable:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return ServiceUnavailable(headers={"Retry-After": str(self.config.retry_after)})


async def open_mysql(url: DatabaseURL, config: Config) -> Statements[aiomysql.Connection]:
    """The database with its first connections open, or ServiceUnavailable."""
    driver = MySQLDriver(url, config)
    await driver.fill()
    return Statements(driver, echo=config.sql_echo)
