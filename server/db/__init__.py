"""Database access behind one small interface: aiomysql for mysql:// URLs, aiosqlite for sqlite:///."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from server.db.dialect import Dialect
from server.db.url import DatabaseURL, parse_url
from server.errors import ServiceUnavailable

if TYPE_CHECKING:
    from server.config import Config

__all__ = ["Database", "DatabaseURL", "Dialect", "ExecResult", "Executor", "IntegrityViolation", "NodeState", "Params",
           "Row", "TransactionConflict", "Value", "column", "connect", "datetime_column", "nullable", "parse_url"]

Params = Sequence[object]  # what the %s placeholders stand for
Value = str | int | float | bytes | dt.date | None  # what a column holds (dt.datetime is a dt.date)
Row = tuple[Value, ...]
V = TypeVar("V", str, int, float, bytes, dt.date)
T = TypeVar("T")


def column(value: Value, kind: type[V]) -> V:
    """A column's value, checked to be of the kind the service expects."""
    if not isinstance(value, kind):
        raise TypeError(f"expected a {kind.__name__} column, got {type(value).__name__}")
    return value


def datetime_column(value: Value) -> dt.datetime:
    """A DATETIME column read as is (not through json_row): aiomysql gives a datetime, SQLite its ISO text; as a
    datetime, the API writes it as every instant (UTC, with Z)."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(column(value, str))


def nullable(value: Value, kind: type[V]) -> V | None:
    """A nullable column's value, checked."""
    return None if value is None else column(value, kind)


class IntegrityViolation(Exception):
    """A unique or foreign key constraint refused the write."""


class TransactionConflict(ServiceUnavailable):
    """The server rolled the transaction back (deadlock, Galera certification failure, lock wait timeout):
    run_transaction replays it; one that escapes (the attempts ran out) answers 503/1008 like an outage."""


@dataclass(frozen=True, slots=True)
class NodeState:
    """One database node as this worker sees it (multi-host URLs)."""

    node: str  # host:port
    state: str  # ready | not_ready | down
    detail: str  # Galera's wsrep_local_state_comment, "plain server", or why the last check failed
    writer: bool


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
    async def execute_later(self, sql: str, params: Params = ()) -> None: ...
    def transaction(self) -> AbstractAsyncContextManager[Executor]: ...
    def after_commit(self, callback: Callable[[], None]) -> None: ...
    async def run_transaction(self, body: Callable[[Executor], Awaitable[T]]) -> T: ...


class Database(Executor, Protocol):
    """A pool (or a single embedded connection) that can be pinged and closed."""

    statement_timeout: float | None  # None: statements are not cut

    async def ping(self) -> None: ...
    async def close(self) -> None: ...
    def pool_stats(self) -> tuple[int, int]: ...
    def node_states(self) -> list[NodeState]: ...


async def connect(config: Config) -> Database:
    """Open the database named by config.database_url (ServiceUnavailable when it cannot be reached)."""
    url = parse_url(config.database_url)
    if url.scheme == "sqlite":
        from server.db.sqlite import open_sqlite

        return await open_sqlite(url.path, echo=config.sql_echo)
    from server.db.mysql import open_mysql

    return await open_mysql(url, config)
