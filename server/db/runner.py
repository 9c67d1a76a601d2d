"""The statement API, written once: fetch_one, fetch_all, execute, execute_later, transaction and ping over a
small driver (a pool of aiomysql connections, or the one aiosqlite connection). The SQL echo, the fetch modes,
the mapping to IntegrityViolation and the transaction's begin/commit/rollback live here only.

A transaction saves round trips: its BEGIN and the writes nobody reads the result of (execute_later) wait on the
transaction and go out in front of its next statement that answers something, or of its COMMIT, in one round trip
(Driver.run takes a batch); a transaction that sent nothing ends without a COMMIT or a ROLLBACK."""

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
Batch = Sequence[tuple[str, Params]]  # statements sent in one round trip, in order


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
    # The statements in order, in one round trip: the first error stops the batch (the statements after it do not
    # run) and is raised as a single statement's would be; else fetch reads the last statement's result.
    async def run(self, conn: C, batch: Batch, fetch: Fetch[T]) -> T: ...
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
        self._waiting: list[tuple[str, Params]] = []  # in a transaction: its BEGIN and writes, not yet sent
        self._sent = False  # in a transaction: something reached the server (a COMMIT or ROLLBACK is due)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row, or None."""
        return await self._run(sql, params, one_row, read=True)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row."""
        return await self._run(sql, params, all_rows, read=True)

    async def execute(self, sql: str, params: Params = ()) -> ExecResult:
        """A write: rows affected and the new auto-increment id."""
        return await self._run(sql, params, write_result)

    async def execute_later(self, sql: str, params: Params = ()) -> None:
        """A write whose result nobody reads: in a transaction it goes out with the transaction's next statement
        (or its COMMIT), and its failure (IntegrityViolation, ...) is raised there, so never queue a write whose
        failure a caller would tell apart (its `except IntegrityViolation` would catch another's); outside one it
        runs now."""
        if self._held is None:
            await self._run(sql, params, write_result)
        else:
            self._waiting.append((sql, params))

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
        tx._waiting.append((self.dialect.begin, ()))  # goes out with the transaction's first statement
        try:
            try:
                yield tx
                if tx._sent or len(tx._waiting) > 1:  # else it wrote and read nothing: no BEGIN went out either
                    await tx.execute("COMMIT")
            except BaseException:
                tx._waiting.clear()  # never sent: nothing of them to undo
                # A link that failed mid-statement was closed: nothing to undo.
                if tx._sent and self.driver.open(conn):
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
        batch: Batch = ((sql, params),)
        if self._waiting:
            batch = (*self._waiting, (sql, params))
            self._waiting.clear()
        if self.echo:
            for each, _ in batch:
                log.debug("sql", extra={"sql": each})
        if self._held is not None:
            self._sent = True
            try:
                return await self.driver.run(self._held, batch, fetch)
            except BaseException as exc:
                self._raise(self._held, exc)
        resent = False
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            conn = await self.driver.acquire(read)
            try:
                return await self.driver.run(conn, batch, fetch)
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
