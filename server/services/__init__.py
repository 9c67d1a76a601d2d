"""Service functions: the SQL lives here, behind keyword-only arguments."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

from server.db import Executor, Params, column
from server.errors import InvalidParameter
from server.schemas.common import MAX_ID

# How the API writes JSON: naive datetimes are UTC, written with Z (answers, stored history, exports).
DUMPS_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z

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


@dataclass(frozen=True, slots=True)
class Key:
    """One column of a list's order: its SQL expression, the decoded object's attribute holding its value, and that
    value's type (what a cursor's JSON value is turned back into)."""

    column: str
    attr: str
    kind: type
    param: str = "%s"  # how a cursor's value is compared with the column (an expression of the parameter)


@dataclass(frozen=True, slots=True)
class Sort:
    """A list's order, unique thanks to its last key (the id): ORDER BY, and the keyset condition that continues
    after a row, so a page deep in the list costs what the first does (no OFFSET to skip through)."""

    keys: tuple[Key, ...]
    descending: bool = False

    @property
    def order(self) -> str:
        return ", ".join(k.column + (" DESC" if self.descending else "") for k in self.keys)

    def after(self, values: Sequence[object]) -> tuple[str, tuple[object, ...]]:
        """The rows after the one whose keys hold `values`: (a > x) OR (a = x AND b > y) ..., flipped when
        descending."""
        op = "<" if self.descending else ">"
        terms: list[str] = []
        args: tuple[object, ...] = ()
        for i, key in enumerate(self.keys):
            terms.append(" AND ".join([f"{k.column} = {k.param}" for k in self.keys[:i]]
                                      + [f"{key.column} {op} {key.param}"]))
            args += (*values[:i], values[i])
        return "(" + " OR ".join(f"({t})" for t in terms) + ")", args


class Found(NamedTuple, Generic[T]):
    """A page of a list: its items, the total of matches (None when not asked for), and the cursor of what follows
    (None on the last page)."""

    items: list[T]
    total: int | None
    next_cursor: str | None


def _cursor_value(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value


def encode_cursor(sort: str, values: Sequence[object]) -> str:
    """A list cursor: the sort and the last row's keys, as URL-safe base64 of JSON (opaque to clients)."""
    return base64.urlsafe_b64encode(orjson.dumps([sort, *map(_cursor_value, values)])).decode().rstrip("=")


def decode_cursor(text: str, name: str, sort: Sort) -> tuple[object, ...]:
    """The keys a cursor of this sort holds, or 400/1001 naming `cursor`."""
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(payload, list) or payload[0] != name or len(payload) != len(sort.keys) + 1:
            raise ValueError("not this list's cursor")
        return tuple(_cursor_key(key, value) for key, value in zip(sort.keys, payload[1:], strict=True))
    except (ValueError, TypeError, IndexError, orjson.JSONDecodeError, binascii.Error):
        raise InvalidParameter("invalid cursor", errors=[{
            "field": "cursor", "message": "not a cursor of this list and sort"}]) from None


def _cursor_key(key: Key, value: object) -> object:
    """A cursor's JSON value as the key's type: an integer past the BIGINT range names no row, and the drivers refuse
    to bind it (SQLite raises OverflowError), so it is as garbled as a wrong type."""
    if key.kind is int and type(value) is int:
        if not -MAX_ID - 1 <= value <= MAX_ID:
            raise ValueError(f"{key.attr} out of range")
        return value
    if key.kind is str and isinstance(value, str):
        return value
    if key.kind in (dt.date, dt.datetime) and isinstance(value, str):
        return key.kind.fromisoformat(value)
    raise ValueError(f"bad {key.attr}")


async def fetch_page(db: Executor, *, row: str, table: str, where: str, args: Params, limit: int, offset: int,
                     decode: Callable[[str], T], sort: Sort | None = None, sort_name: str = "",
                     cursor: str | None = None, order: str | None = None, count: bool = True) -> Found[T]:
    """A page of `table`'s rows matching `where` (one json_row column, decoded), the total of matches and the cursor
    of the next page: from `offset`, or after the row a `cursor` names (then a deep page costs what the first does).

    The total comes from an uncorrelated subquery, run once per statement on an index: one round trip,
    and unlike COUNT(*) OVER () it does not read and sort every matching row to return a page. A page past
    the end has no row to carry the total, so it is counted apart. One row more than the page says whether
    another page follows.

    count=False (a list's include_total=false) leaves the total out (None): for a caller who may see every row (an
    admin), counting the matches reads all of them however the page is found, so a deployment's growth shows in
    every page unless the client opts out."""
    page_where, page_args = where, tuple(args)
    order_by = sort.order if sort is not None else order  # `order` alone: a list that takes offset only (yet)
    if cursor is not None and sort is not None:
        if offset:
            raise InvalidParameter("offset and cursor exclude each other", errors=[{
                "field": "offset", "message": "must be 0 (or absent) with a cursor"}])
        condition, after_args = sort.after(decode_cursor(cursor, sort_name, sort))
        page_where, page_args = f"{where} AND {condition}", (*page_args, *after_args)
    total_column = f", (SELECT COUNT(*) FROM {table} WHERE {where})" if count else ""  # noqa: S608
    total_args = tuple(args) if count else ()
    rows = await db.fetch_all(
        f"SELECT {row}{total_column} FROM {table} WHERE {page_where}"  # noqa: S608
        f" ORDER BY {order_by} LIMIT %s OFFSET %s", (*total_args, *page_args, limit + 1, offset))
    if rows:
        items = [decode(column(r[0], str)) for r in rows[:limit]]
        following = None
        if len(rows) > limit and sort is not None:
            following = encode_cursor(sort_name, [getattr(items[-1], k.attr) for k in sort.keys])
        return Found(items, column(rows[0][1], int) if count else None, following)
    if not count:
        return Found([], None, None)
    if offset == 0 and cursor is None:
        return Found([], 0, None)
    total = await db.fetch_one(f"SELECT COUNT(*) FROM {table} WHERE {where}", args)  # noqa: S608
    return Found([], column(total[0], int) if total else 0, None)


def page(limit: int, offset: int, found: Found[Any] | int | None) -> dict[str, Any]:
    """The top-level "page" object of a paginated list (a bare total: a list that takes no cursor yet; a total of
    None: not counted, include_total=false)."""
    if not isinstance(found, Found):
        return {"limit": limit, "offset": offset, "total": found}
    return {"limit": limit, "offset": offset, "total": found.total, "next_cursor": found.next_cursor}
