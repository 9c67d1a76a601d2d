"""Database access behind one small interface: aiomysql for mysql:// URLs, aiosqlite for sqlite:///."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from server.db.dialect import Dialect
from server.db.url import DatabaseURL, parse_url

if TYPE_CHECKING:
    from server.config import Config

__all__ = ["Database", "DatabaseURL", "Dialect", "ExecResult", "Executor", "IntegrityViolation", "Params", "Row",
           "Value", "column", "connect", "nullable", "parse_url"]

Params = Sequence[object]  # what the %s placeholders stand for
Value = str | int | float | bytes | dt.date | None  # what a column holds (dt.datetime is a dt.date)
Row = tuple[Value, ...]
V = TypeVar("V", str, int, float, bytes, dt.date)


def column(value: Value, kind: type[V]) -> V:
    """A column's value, checked to be of the kind the service expects."""
    if not isinstance(value, kind):
        raise TypeError(f"expected a {kind.__name__} column, got {type(value).__name__}")
    return value


def nullable(value: Value, kind: type[V]) -> V | None:
    """A nullable column's value, checked."""
    return None if value is None else column(value, kind)


class IntegrityViolation(Exception):
    """A unique or foreign key constraint refused the write."""


@dataclass(frozen=True, slots=True)
class ExecResult:
    rowcount: int
    lastrowid: int | None


class Executor(Protocol):
    """What services use: parameterized statements with %s placeholders, and transactions (one opened
    inside another joins it)."""

    dialect: Dialect

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def execute(self, sql: str, params: Params = ()) -> ExecResult: ...
    def transaction(self) -> AbstractAsyncContextManager[Executor]: ...


class Database(Executor, Protocol):
    """A pool (or a single embedded connection) that can be pinged and closed."""

    statement_timeout: float | None  # None: statements are not cut

    async def ping(self) -> None: ...
    async def close(self) -> None: ...
    def pool_stats(self) -> tuple[int, int]: ...


async def connect(config: Config) -> Database:
    """Open the database named by config.database_url (ServiceUnavailable when it cannot be reached)."""
    url = parse_url(config.database_url)
    if url.scheme == "sqlite":
        from server.db.sqlite import open_sqlite

        return await open_sqlite(url.path, echo=config.sql_echo)
    from server.db.mysql import open_mysql

    return await open_mysql(url, config)
