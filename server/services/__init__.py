"""Service functions: the SQL lives here, behind keyword-only arguments."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TypeVar

from server.db import Executor, Params, column

T = TypeVar("T")


def utcnow() -> dt.datetime:
    """Now, as a naive UTC datetime with microseconds (what DATETIME(6) columns hold)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def now_ms() -> int:
    """Now in epoch milliseconds."""
    return int(time.time() * 1000)


def json_row(columns: str) -> str:
    """The columns selected as one JSON array: the driver parses a column descriptor and a value per
    column per query in pure Python (over half of a one-row read's cost); the database writes the array
    and orjson reads it in C. Both databases write dates as ISO text, so models decode them one way."""
    return f"JSON_ARRAY({columns})"


async def fetch_page(db: Executor, *, row: str, table: str, where: str, args: Params, order: str, limit: int,
                     offset: int, decode: Callable[[str], T]) -> tuple[list[T], int]:
    """A page of `table`'s rows matching `where` (one json_row column, decoded) and the total of matches.

    The total comes from an uncorrelated subquery, run once per statement on an index: one round trip,
    and unlike COUNT(*) OVER () it does not read and sort every matching row to return a page. A page past
    the end has no row to carry the total, so it is counted apart."""
    rows = await db.fetch_all(
        f"SELECT {row}, (SELECT COUNT(*) FROM {table} WHERE {where}) FROM {table} WHERE {where}"  # noqa: S608
        f" ORDER BY {order} LIMIT %s OFFSET %s", (*args, *args, limit, offset))
    if rows:
        return [decode(column(r[0], str)) for r in rows], column(rows[0][1], int)
    if offset == 0:
        return [], 0
    total = await db.fetch_one(f"SELECT COUNT(*) FROM {table} WHERE {where}", args)  # noqa: S608
    return [], column(total[0], int) if total else 0


def page(limit: int, offset: int, total: int) -> dict[str, int]:
    """The top-level "page" object of a paginated list."""
    return {"limit": limit, "offset": offset, "total": total}
