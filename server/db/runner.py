"""The statement API, written once: fetch_one, fetch_all, execute, transaction and ping over a small
driver (a pool of aiomysql connections, or the one aiosqlite connection). The SQL echo, the fetch modes,
the mapping to IntegrityViolation and the transaction's begin/commit/rollback live here only."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Generic, NoReturn, Protocol, TypeVar

from server.db import ExecResult, IntegrityViolation, Params, Row
from server.db.dialect import Dialect

log = logging.getLogger("pet_api.db")

C = TypeVar("C")
T = TypeVar("T")


class Cursor(Protocol):
    """What a fetch mode reads from (aiomysql's and aiosqlite's cursors both are one)."""

    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    async def fetchone(self) -> Row | None: ...
    async def fetchall(self) -> Sequence[Row]: ...


Fetch = Callable[[Cursor], Awaitable[T]]


async def one_row(cur: Cursor) -> Row | None:
    """Fetch mode: the first row, or None."""
    return await cur.fetchone()


async def all_rows(cur: Cursor) -> list[Row]:
    """Fetch mode: every row."""
    return list(await cur.fetchall())


async def write_result(cur: Cursor) -> ExecResult:
    """Fetch mode: what a write did."""
    return ExecResult(cur.rowcount, cur.lastrowid)


class Driver(Protocol[C]):
    """One database's connections: how to borrow one, run a statement on it, and read its failures."""

    @property
    def dialect(self) -> Dialect: ...
    @property
    def integrity_error(self) -> type[Exception]: ...
    @property
    def statement_timeout(self) -> float | None: ...  # None: statements are not cut

    async def acquire(self) -> C: ...
    def release(self, conn: C) -> None: ...
    async def run(self, conn: C, sql: str, params: Params, fetch: Fetch[T]) -> T: ...
    def failure(self, conn: C, exc: BaseException) -> BaseException: ...
    def never_sent(self, exc: BaseException) -> bool: ...
    def open(self, conn: C) -> bool: ...
    async def close(self) -> None: ...
    def pool_stats(self) -> tuple[int, int]: ...


class Statements(Generic[C]):
    """Statements on a driver: each on a borrowed connection, or all on the one a transaction holds."""

    def __init__(self, driver: Driver[C], *, echo: bool, held: C | None = None) -> None:
        self.driver = driver
        self.dialect = driver.dialect
        self.statement_timeout = driver.statement_timeout
        self.echo = echo
        self._held = held

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row, or None."""
        return await self._run(sql, params, one_row)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row."""
        return await self._run(sql, params, all_rows)

    async def execute(self, sql: str, params: Params = ()) -> ExecResult:
        """A write: rows affected and the new auto-increment id."""
        return await self._run(sql, params, write_result)

    async def ping(self) -> None:
        """Raise ServiceUnavailable unless the database answers."""
        await self.fetch_one("SELECT 1")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements[C]]:
        """One connection for the block, committed at its end and rolled back if it raises; a transaction
        opened inside another joins it."""
        if self._held is not None:
            yield self
            return
        conn = await self.driver.acquire()
        tx = Statements(self.driver, echo=self.echo, held=conn)
        try:
            try:
                await tx.execute(self.dialect.begin)
                yield tx
                await tx.execute("COMMIT")
            except BaseException:
                if self.driver.open(conn):  # a link that failed mid-statement was closed: nothing to undo
                    with contextlib.suppress(Exception):  # the first failure is the one to report
                        await tx.execute("ROLLBACK")
                raise
        finally:
            self.driver.release(conn)

    async def close(self) -> None:
        """Close every connection."""
        await self.driver.close()

    def pool_stats(self) -> tuple[int, int]:
        """(in use, idle) connections."""
        return self.driver.pool_stats()

    async def _run(self, sql: str, params: Params, fetch: Fetch[T]) -> T:
        if self.echo:
            log.debug("sql", extra={"sql": sql})
        if self._held is not None:
            try:
                return await self.driver.run(self._held, sql, params, fetch)
            except BaseException as exc:
                self._raise(self._held, exc)
        for attempt in (1, 2):  # a statement that never reached the server is tried once more
            conn = await self.driver.acquire()
            try:
                return await self.driver.run(conn, sql, params, fetch)
            except BaseException as exc:
                if attempt == 1 and self.driver.never_sent(exc):
                    self.driver.failure(conn, exc)  # closes the link
                    continue
                self._raise(conn, exc)
            finally:
                self.driver.release(conn)
        raise AssertionError("unreachable")

    def _raise(self, conn: C, exc: BaseException) -> NoReturn:
        """Raise what the statement's exception becomes (a link that failed is closed on the way)."""
        if isinstance(exc, self.driver.integrity_error):
            raise IntegrityViolation(str(exc)) from exc
        failure = self.driver.failure(conn, exc)
        if failure is exc:
            raise exc
        raise failure from exc
