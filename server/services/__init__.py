"""Service functions: the SQL lives here, behind keyword-only arguments."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any


def utcnow() -> dt.datetime:
    """Now, as a naive UTC datetime with microseconds (what DATETIME(6) columns hold)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def now_ms() -> int:
    """Now in epoch milliseconds."""
    return int(time.time() * 1000)


def as_datetime(value: Any) -> dt.datetime:
    """A DATETIME column's value (aiomysql gives datetime, SQLite gives text)."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


def as_date(value: Any) -> dt.date | None:
    """A DATE column's value, or None."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def page(limit: int, offset: int, total: int) -> dict[str, int]:
    """The top-level "page" object of a paginated list."""
    return {"limit": limit, "offset": offset, "total": total}
