"""Request models of pets.

The same models validate requests and produce the API document, so each type accepts exactly what its
JSON Schema admits: dates are "YYYY-MM-DD" strings (not timestamps), numbers are JSON numbers (not
strings or booleans), and lengths are checked on the text as sent (whitespace is trimmed afterwards).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError

from server.schemas.common import (
    BLANKS,
    MAX_ID,
    NOT_BLANK,
    IncludeTotal,
    Limit,
    Offset,
    PageCursor,
    PatchBody,
    QueryInt,
    trimmed_not_blank,
)
from server.validation import Body, Query

Species = Literal["dog", "cat", "bird", "rabbit", "fish", "reptile", "other"]
Sex = Literal["male", "female", "unknown"]
Status = Literal["available", "pending", "adopted"]
Role = Literal["owner", "caretaker", "viewer"]
PetSort = Literal["id", "-id", "name", "-name", "created_at", "-created_at"]
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """Only a "YYYY-MM-DD" string is a date (pydantic alone would take 0 or a datetime string)."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise PydanticCustomError("date_format", "must be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date_value", "must be a valid calendar date") from None


def _trimmed_or_none(value: str | None) -> str | None:
    return (value.strip(BLANKS) or None) if value is not None else None


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _not_future(value: dt.date | None) -> dt.date | None:
    if value is not None and value > _utc_today():
        raise PydanticCustomError("date_in_future", "must not be in the future")
    return value


def _digits_between(low: str, high: str) -> str:
    """A regex for the fixed-width decimal strings from low to high (same width, low <= high)."""
    if low == high:
        return low
    rest = len(low) - 1
    if low == "0" * len(low) and high == "9" * len(high):
        return "[0-9]" * len(low)
    if rest == 0:
        return f"[{low}-{high}]"
    if low[0] == high[0]:
        return low[0] + _digits_between(low[1:], high[1:])
    parts = [low[0] + _digits_between(low[1:], "9" * rest)]
    if int(high[0]) - int(low[0]) > 1:
        middle = f"{int(low[0]) + 1}" if int(high[0]) - int(low[0]) == 2 else f"[{int(low[0]) + 1}-{int(high[0]) - 1}]"
        parts.append(middle + "[0-9]" * rest)
    parts.append(high[0] + _digits_between("0" * rest, high[1:]))
    return "(?:" + "|".join(parts) + ")"


def dates_until(day: dt.date) -> str:
    """A regex for the "YYYY-MM-DD" strings of dates from 0001-01-01 to day (with format: date, which
    checks the calendar), so the document can say "not in the future"."""
    parts = []
    if day.year > 1:
        parts.append(_digits_between("0001", f"{day.year - 1:04d}") + "-[0-9]{2}-[0-9]{2}")
    if day.month > 1:
        parts.append(f"{day.year:04d}-" + _digits_between("01", f"{day.month - 1:02d}") + "-[0-9]{2}")
    parts.append(f"{day.year:04d}-{day.month:02d}-" + _digits_between("01", f"{day.day:02d}"))
    return "^(?:" + "|".join(parts) + ")$"


def _birth_date_schema(schema: dict[str, Any]) -> None:
    """Called whenever the document is built: today's bound, in words and as a pattern."""
    schema["description"] = "YYYY-MM-DD, not after today (UTC)"
    for option in schema.get("anyOf", [schema]):
        if option.get("format") == "date":
            option["pattern"] = dates_until(_utc_today())


Date = Annotated[dt.date, BeforeValidator(_iso_date)]
Name = Annotated[str, Strict(), Field(min_length=1, max_length=64, json_schema_extra={"pattern": NOT_BLANK}),
                 AfterValidator(trimmed_not_blank)]
Breed = Annotated[str, Strict(), Field(max_length=64)]
BirthDate = Annotated[Date | None, AfterValidator(_not_future), Field(json_schema_extra=_birth_date_schema)]


class PetCreate(Body):
    name: Name
    species: Species
    breed: Annotated[Breed | None, AfterValidator(_trimmed_or_none)] = None
    sex: Sex = "unknown"
    birth_date: BirthDate = None
    status: Status = "available"


class PetUpdate(PatchBody):
    """Only the fields sent are changed; name, species, sex and status cannot be set to null."""

    # Not Optional: null is refused; the None default only means "not sent" (exclude_unset).
    name: Name = None  # type: ignore[assignment]
    species: Species = None  # type: ignore[assignment]
    breed: Annotated[Breed | None, AfterValidator(_trimmed_or_none)] = None
    sex: Sex = None  # type: ignore[assignment]
    birth_date: BirthDate = None
    status: Status = None  # type: ignore[assignment]


class PetListQuery(Query):
    species: Annotated[Species | None, Field(description="only pets of this species")] = None
    status: Annotated[Status | None, Field(description="only pets with this status")] = None
    q: Annotated[str | None, Field(min_length=1, max_length=64, description=(
        "name contains this text, case-insensitively; % and _ are plain characters"))] = None
    owner_id: Annotated[int | None, Field(ge=1, le=MAX_ID, description=(
        "only this owner's pets (callers without pets:admin only ever see pets they are members of)")), QueryInt] = None
    role: Annotated[Role | None, Field(description="only pets on which the caller has this role")] = None
    sort: Annotated[PetSort, Field(description="order of the page; a leading - sorts descending")] = "id"
    limit: Limit = 20
    offset: Offset = 0
    cursor: PageCursor = None
    include_total: IncludeTotal = True
