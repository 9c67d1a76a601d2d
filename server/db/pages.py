"""Reading a large result a page at a time by its key (keyset pagination): the user's data export reads every
row of an account this way, so a large account is never held whole and no OFFSET rescans what was read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from server.db import Executor, Params, Row

PAGE = 500  # rows read at a time


def after(order: Sequence[str]) -> str:
    """The condition 'the row comes after the key' for ORDER BY order, written out (a > x OR (a = x AND b > y))
    rather than as a row comparison, which MariaDB's range optimizer does not use an index for."""
    terms = []
    for i, name in enumerate(order):
        terms.append("(" + " AND ".join([f"{prior} = %s" for prior in order[:i]] + [f"{name} > %s"]) + ")")
    return "(" + " OR ".join(terms) + ")"


def _key_args(key: Sequence[object]) -> list[object]:
    args: list[object] = []
    for i in range(len(key)):
        args.extend(key[: i + 1])
    return args


async def keyset(db: Executor, sql: str, params: Params, *, order: Sequence[str],
                 key: Sequence[int] | None = None) -> AsyncIterator[Row]:
    """Every row of `sql` (a SELECT ending in its WHERE condition, with no ORDER BY or LIMIT) in `order`, read PAGE
    rows at a time. The key of a row is its columns at positions `key` (default: the first len(order)); the
    ORDER BY columns must be unique together, or rows sharing a key across a page boundary would be skipped."""
    positions = list(key) if key is not None else list(range(len(order)))
    ordering = ", ".join(order)
    last: list[object] | None = None
    while True:
        page = PAGE  # read once per page: a test may lower it
        if last is None:
            query, args = f"{sql} ORDER BY {ordering} LIMIT %s", [*params, page]
        else:
            query, args = f"{sql} AND {after(order)} ORDER BY {ordering} LIMIT %s", [*params, *_key_args(last), page]
        rows = await db.fetch_all(query, args)
        for row in rows:
            yield row
        if len(rows) < page:
            return
        last = [rows[-1][i] for i in positions]
