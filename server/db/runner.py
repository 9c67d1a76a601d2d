"""The statement API, written once: fetch_one, fetch_all, execute, transaction and ping over a small
driver (a pool of aiomysql connections, or the one aiosqlite connection). The SQL echo, the fetch modes,
the mapping to IntegrityViolation and the transaction's begin/commit/rollback live here only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Generic, NoReturn, Protocol, TypeVar

from server.db import ExecResult, Executor, IntegrityViolation, NodeState, Params, Row, TransactionConflict
from server.db.dialect import Dialect

log = logging.getLogger("pet_api.db")
CONFLICT_ATTEMPTS = 10  # a transaction the server rolled back (deadlock, certification failure) runs this often
CONFLICT_BACKOFF = 0.01  # seconds; attempt n waits a random time below CONFLICT_BACKOFF * 2**n ...
CONFLICT_BACKOFF_MAX = 0.5  # ... and below this

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

    async def acquire(self, read: bool = False) -> C: ...  # read: an autocommit read (db_read_from)
    def release(self, conn: C) -> None: ...
    async def run(self, conn: C, sql: str, params: Params, fetch: Fetch[T]) -> T: ...
    def failure(self, conn: C, exc: BaseException) -> BaseException: ...
    def never_sent(self, exc: BaseException) -> bool: ...
    def open(self, conn: C) -> bool: ...
    async def close(self) -> None: ...
    def pool_stats(self) -> tuple[int, int]: ...
    def node_states(self) -> list[NodeState]: ...


async def _back_off(attempt: int) -> None:
    """A jittered pause before a conflicting unit of work runs again (the rivals spread out)."""
    await asyncio.sleep(random.uniform(0, min(CONFLICT_BACKOFF * 2**attempt, CONFLICT_BACKOFF_MAX)))  # noqa: S311


class Statements(Generic[C]):
    """Statements on a driver: each on a borrowed connection, or all on the one a transaction holds."""

    def __init__(self, driver: Driver[C], *, echo: bool, held: C | None = None) -> None:
        self.driver = driver
        self.dialect = driver.dialect
        self.statement_timeout = driver.statement_timeout
        self.echo = echo
        self._held = held
        self._after_commit: list[Callable[[], None]] = []

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row, or None."""
        return await self._run(sql, params, one_row, read=True)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row."""
        return await self._run(sql, params, all_rows, read=True)

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
        for callback in tx._after_commit:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call callback() once the transaction has committed (not if it rolls back; a callback registered twice
        runs once). Outside a transaction every statement has committed already: it runs now."""
        if self._held is None:
            callback()
        elif callback not in self._after_commit:
            self._after_commit.append(callback)

    async def run_transaction(self, body: Callable[[Executor], Awaitable[T]]) -> T:
        """body(tx) in one transaction; when the server rolls it back for a conflict (1213, 1205) the whole body
        runs again, up to CONFLICT_ATTEMPTS times, on a connection from the pool. Inside a transaction it joins it
        (the outer unit of work is the one replayed)."""
        if self._held is not None:
            return await body(self)
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                async with self.transaction() as tx:
                    return await body(tx)
            except TransactionConflict:
                if attempt == CONFLICT_ATTEMPTS:
                    log.warning("transaction still conflicting after %d attempts", attempt)
                    raise
            await _back_off(attempt)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close every connection."""
        await self.driver.close()

    def pool_stats(self) -> tuple[int, int]:
        """(in use, idle) connections."""
        return self.driver.pool_stats()

    def node_states(self) -> list[NodeState]:
        """The database nodes of a multi-host URL and which one this worker writes to."""
        return self.driver.node_states()

    async def _run(self, sql: str, params: Params, fetch: Fetch[T], *, read: bool = False) -> T:
        if self.echo:
            log.debug("sql", extra={"sql": sql})
        if self._held is not None:
            try:
                return await self.driver.run(self._held, sql, params, fetch)
            except BaseException as exc:
                self._raise(self._held, exc)
        resent = False
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            conn = await self.driver.acquire(read)
            try:
                return await self.driver.run(conn, sql, params, fetch)
            except BaseException as exc:
                if not resent and self.driver.never_sent(exc):  # it never reached the server: once more
                    resent = True
                    self.driver.failure(conn, exc)  # closes the link
                    continue
                try:
                    self._raise(conn, exc)
                except TransactionConflict:  # an autocommit statement the server rolled back: run it again
                    if attempt == CONFLICT_ATTEMPTS:
                        log.warning("statement still conflicting after %d attempts", attempt)
                        raise
            finally:
                self.driver.release(conn)
            await _back_off(attempt)
        raise AssertionError("unreachable")

    def _raise(self, conn: C, exc: BaseException) -> NoReturn:
        """Raise what the statement's exception becomes (a link that failed is closed on the way)."""
        if isinstance(exc, self.driver.integrity_error):
            raise IntegrityViolation(str(exc)) from exc
        failure = self.driver.failure(conn, exc)
        if failure is exc:
            raise exc
        raise failure from exc
