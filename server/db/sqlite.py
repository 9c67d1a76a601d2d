"""The embedded default for dev: one aiosqlite connection, lent to one statement or transaction at a time."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import aiosqlite

from server.db import NodeState, Row
from server.db.collation import unicode_ci_key
from server.db.dialect import SQLITE
from server.db.runner import Batch, Fetch, Statements
from server.errors import ServiceUnavailable

PROJECT = Path(__file__).resolve().parents[2]  # the folder of main.py and server/

T = TypeVar("T")


@lru_cache(maxsize=512)
def _qmark(sql: str) -> str:
    return sql.replace("%s", "?")


def _param(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _sleep(seconds: float) -> int:
    """SLEEP(seconds) as MariaDB has it (it runs on the connection's own thread)."""
    time.sleep(seconds)
    return 0


class _Cursor:
    """aiosqlite's cursor as the runner reads it: with no row_factory, its rows are plain tuples."""

    def __init__(self, cur: aiosqlite.Cursor) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cur.lastrowid

    async def fetchone(self) -> Row | None:
        row = await self._cur.fetchone()
        return None if row is None else _row(row)

    async def fetchall(self) -> list[Row]:
        return [_row(row) for row in await self._cur.fetchall()]


def _row(row: object) -> Row:
    if not isinstance(row, tuple):
        raise TypeError(f"expected a tuple row, got {type(row).__name__}")
    return row


class SQLiteDriver:
    """The one connection; a lock keeps one coroutine's transaction from absorbing another's statements."""

    dialect = SQLITE
    integrity_error = sqlite3.IntegrityError
    statement_timeout: float | None = None

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self._lock = asyncio.Lock()

    async def acquire(self, read: bool = False) -> aiosqlite.Connection:
        await self._lock.acquire()
        return self.conn

    def release(self, conn: aiosqlite.Connection) -> None:
        self._lock.release()

    async def run(self, conn: aiosqlite.Connection, batch: Batch, fetch: Fetch[T]) -> T:
        """The batch's statements one by one (no network to save a round trip on); the first error stops it."""
        for sql, params in batch[:-1]:
            await (await conn.execute(_qmark(sql), [_param(p) for p in params])).close()
        sql, params = batch[-1]
        cur = await conn.execute(_qmark(sql), [_param(p) for p in params])
        try:
            return await fetch(_Cursor(cur))
        finally:
            await cur.close()

    def failure(self, conn: aiosqlite.Connection, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "unable to open" in str(exc)):
            return ServiceUnavailable(headers={"Retry-After": "1"})
        return exc  # a cancelled statement still runs to its end on the connection's thread: nothing to close

    def never_sent(self, exc: BaseException) -> bool:
        return False

    def open(self, conn: aiosqlite.Connection) -> bool:
        return True

    async def close(self) -> None:
        await self.conn.close()

    def pool_stats(self) -> tuple[int, int]:
        """(in use, idle): one embedded connection."""
        return (1, 0) if self._lock.locked() else (0, 1)

    def node_states(self) -> list[NodeState]:
        return []


def resolve(path: str) -> str:
    """Where the database file is: a relative path is relative to the project folder (where main.py is), so
    `sqlite:///var/dev.sqlite3` is one database whichever directory the service or the CLI starts in."""
    if path == ":memory:" or Path(path).is_absolute():
        return path
    return str(PROJECT / path)


async def open_sqlite(path: str, *, echo: bool = False) -> Statements[aiosqlite.Connection]:
    """The database file (and its directory) opened, created if missing."""
    path = resolve(path)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "busy_timeout=5000", "foreign_keys=ON", "synchronous=NORMAL"):
            await conn.execute(f"PRAGMA {pragma}")
        await conn.create_function("SLEEP", 1, _sleep)
        await conn.create_function("UNICODE_CI", 1, unicode_ci_key, deterministic=True)
    except BaseException:  # a file that is no database, a stop signal: its thread must not outlive us
        await conn.close()
        raise
    return Statements(SQLiteDriver(conn), echo=echo)
