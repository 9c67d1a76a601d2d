"""The embedded default for dev: one aiosqlite connection, statements serialized by a lock."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiosqlite

from server.db import ExecResult, IntegrityViolation, Params, Row
from server.errors import ServiceUnavailable

log = logging.getLogger("pet_api.db")


@lru_cache(maxsize=512)
def _qmark(sql: str) -> str:
    return sql.replace("%s", "?")


def _param(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class _Statements:
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, echo: bool) -> None:
        self.conn = conn
        self.echo = echo

    async def _run(self, sql: str, params: Params, fetch: int) -> Any:
        if self.echo:
            log.debug("sql", extra={"sql": sql})
        try:
            cur = await self.conn.execute(_qmark(sql), [_param(p) for p in params])
            try:
                if fetch == 1:
                    return await cur.fetchone()
                if fetch == 2:
                    return await cur.fetchall()
                return ExecResult(cur.rowcount, cur.lastrowid)
            finally:
                await cur.close()
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "unable to open" in str(exc):
                raise ServiceUnavailable(headers={"Retry-After": "1"}) from exc
            raise

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return await self._run(sql, params, 1)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._run(sql, params, 2))

    async def execute(self, sql: str, params: Params = ()) -> ExecResult:
        return await self._run(sql, params, 0)


class SQLiteDatabase:
    """Single-connection database; a lock keeps one coroutine's transaction from absorbing another's."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, echo: bool) -> None:
        self._stmts = _Statements(conn, echo)
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str, *, echo: bool = False) -> SQLiteDatabase:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "busy_timeout=5000", "foreign_keys=ON", "synchronous=NORMAL"):
            await conn.execute(f"PRAGMA {pragma}")
        return cls(conn, echo)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._lock:
            return await self._stmts.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            return await self._stmts.fetch_all(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> ExecResult:
        async with self._lock:
            return await self._stmts.execute(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Statements]:
        async with self._lock:
            await self._stmts.execute("BEGIN IMMEDIATE")
            try:
                yield self._stmts
            except BaseException:
                await self._stmts.execute("ROLLBACK")
                raise
            await self._stmts.execute("COMMIT")

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1")

    async def close(self) -> None:
        await self._stmts.conn.close()

    def pool_stats(self) -> tuple[int, int]:
        """(in use, idle): one embedded connection."""
        return (1, 0) if self._lock.locked() else (0, 1)
