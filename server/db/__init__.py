"""Database access behind one small interface: aiomysql for mysql:// URLs, aiosqlite for sqlite:///."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

Params = Sequence[Any]
Row = tuple[Any, ...]


class IntegrityViolation(Exception):
    """A unique or foreign key constraint refused the write."""


@dataclass(frozen=True, slots=True)
class ExecResult:
    rowcount: int
    lastrowid: int | None


class Executor(Protocol):
    """What services use: parameterized statements with %s placeholders."""

    dialect: str

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def execute(self, sql: str, params: Params = ()) -> ExecResult: ...


class Database(Executor, Protocol):
    """A pool (or a single embedded connection) plus transactions."""

    def transaction(self) -> AbstractAsyncContextManager[Executor]: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...
    def pool_stats(self) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    scheme: str
    user: str
    password: str
    host: str
    port: int
    database: str
    path: str


def parse_url(url: str) -> DatabaseURL:
    """Split mysql://user:pass@host:port/db or sqlite:///path (relative) / sqlite:////abs/path."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        return DatabaseURL("sqlite", "", "", "", 0, "", unquote(url.split("://", 1)[1][1:]) or ":memory:")
    if scheme not in ("mysql", "mariadb"):
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}: use mysql:// or sqlite:///")
    return DatabaseURL("mysql", unquote(parts.username or "root"), unquote(parts.password or ""),
                       parts.hostname or "127.0.0.1", parts.port or 3306, parts.path.lstrip("/"), "")


async def connect(config: Any) -> Database:
    """Open the database named by config.database_url."""
    url = parse_url(config.database_url)
    if url.scheme == "sqlite":
        from server.db.sqlite import SQLiteDatabase

        return await SQLiteDatabase.open(url.path, echo=config.sql_echo)
    from server.db.mysql import MySQLDatabase

    return await MySQLDatabase.open(url, config)
