"""aiomysql pool with bounded waits: a database that is gone becomes ServiceUnavailable, never a hang."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
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


class _Connection:
    """One acquired connection; every statement bounded by the statement timeout."""

    dialect = "mysql"

    def __init__(self, conn: aiomysql.Connection, timeout: float, echo: bool) -> None:
        self.conn = conn
        self.timeout = timeout
        self.echo = echo

    async def _run(self, sql: str, params: Params, fetch: int) -> Any:
        if self.echo:
            log.debug("sql", extra={"sql": sql})
        async with asyncio.timeout(self.timeout):
            cur = await self.conn.cursor()
            try:
                await cur.execute(sql, params or None)
                if fetch == 1:
                    return await cur.fetchone()
                if fetch == 2:
                    return await cur.fetchall()
                return ExecResult(cur.rowcount, cur.lastrowid)
            finally:
                await cur.close()

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return await self._run(sql, params, 1)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._run(sql, params, 2))

    async def execute(self, sql: str, params: Params = ()) -> ExecResult:
        return await self._run(sql, params, 0)


class MySQLDatabase:
    """The pool; single statements borrow a connection, transactions hold one."""

    dialect = "mysql"

    def __init__(self, pool: aiomysql.Pool | None, url: DatabaseURL, config: Any) -> None:
        self.pool = pool
        self.url = url
        self.config = config
        self._pool_lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: DatabaseURL, config: Any) -> MySQLDatabase:
        db = cls(None, url, config)
        await db._ensure_pool()
        return db

    async def _ensure_pool(self) -> aiomysql.Pool:
        if self.pool is not None:
            return self.pool
        async with self._pool_lock:
            if self.pool is None:
                c = self.config
                try:
                    async with asyncio.timeout(c.db_connect_timeout + 1):
                        self.pool = await aiomysql.create_pool(
                            host=self.url.host, port=self.url.port, user=self.url.user,
                            password=self.url.password, db=self.url.database, charset="utf8mb4",
                            autocommit=True, minsize=c.db_pool_min, maxsize=c.db_pool_max,
                            pool_recycle=c.db_pool_recycle, connect_timeout=c.db_connect_timeout,
                            init_command="SET time_zone = '+00:00'")
                except UNAVAILABLE as exc:
                    raise ServiceUnavailable(headers={"Retry-After": str(c.retry_after)}) from exc
        return self.pool

    def _unavailable(self, exc: BaseException) -> ServiceUnavailable:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return ServiceUnavailable(headers={"Retry-After": str(self.config.retry_after)})

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        pool = await self._ensure_pool()
        try:
            async with asyncio.timeout(self.config.db_acquire_timeout):
                conn = await pool.acquire()
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        try:
            yield _Connection(conn, self.config.db_statement_timeout, self.config.sql_echo)
        except pymysql.err.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc
        except UNAVAILABLE as exc:
            conn.close()  # a failed link must never go back to the pool
            raise self._unavailable(exc) from exc
        except asyncio.CancelledError:
            conn.close()  # the client left mid-statement: the reply may still be in flight
            raise
        finally:
            pool.release(conn)

    async def _once(self, method: str, sql: str, params: Params) -> Any:
        for attempt in (1, 2):
            try:
                async with self._connection() as conn:
                    return await getattr(conn, method)(sql, params)
            except ServiceUnavailable as exc:
                cause = exc.__cause__
                retry = (attempt == 1 and isinstance(cause, pymysql.err.OperationalError)
                         and cause.args and cause.args[0] in GONE_BEFORE_SENT)
                if not retry:
                    raise
        raise AssertionError("unreachable")

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return await self._once("fetch_one", sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._once("fetch_all", sql, params)

    async def execute(self, sql: str, params: Params = ()) -> ExecResult:
        return await self._once("execute", sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Connection]:
        async with self._connection() as conn:
            await conn.execute("BEGIN")
            try:
                yield conn
            except BaseException:
                if not conn.conn.closed:
                    try:
                        await conn.execute("ROLLBACK")
                    except UNAVAILABLE:
                        conn.conn.close()
                raise
            await conn.execute("COMMIT")

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1")

    async def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            await self.pool.wait_closed()

    def pool_stats(self) -> tuple[int, int]:
        """(in use, idle) connections."""
        if self.pool is None:
            return 0, 0
        return self.pool.size - self.pool.freesize, self.pool.freesize
