"""Request models of pets.

The same models validate requests and produce the API document, so each type accepts exactly what its
JSON Schema admits: dates are "YYYY-MM-DD" strings (not timestamps), numbers are JSON numbers (not
strings or booleans), and lengths are checked on the text as sent (whitespace is trimmed afterwards).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from server.schemas.common import MAX_ID, IncludeTotal, Limit, Offset, PageCursor, PatchBody, QueryInt, Text
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


def _empty_is_none(value: str | None) -> str | None:
    return value or None


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _not_future(value: dt.date | None) -> dt.date | None:
    if value is not None and value > _utc_today():
        raise PydanticCustomError("date_in_future", "must not be in the future")
    return value


# "Not in the future" in words only: a pattern of the dates up to today would change the document every day.
BIRTH_DATE = "YYYY-MM-DD, not after today (UTC); a later date is 400/1001 naming birth_date"


Date = Annotated[dt.date, BeforeValidator(_iso_date)]
Name = Annotated[str, Text(64)]
Breed = Annotated[str, Text(64, not_blank=False)]  # blank clears it, as null does
BirthDate = Annotated[Date | None, AfterValidator(_not_future), Field(description=BIRTH_DATE)]


class PetCreate(Body):
    name: Name
    species: Species
    breed: Annotated[Breed | None, AfterValidator(_empty_is_none)] = None
    sex: Sex = "unknown"
    birth_date: BirthDate = None
    status: Status = "available"


class PetUpdate(PatchBody):
    """Only the fields sent are changed; name, species, sex and status cannot be set to null."""

    # Not Optional: null is refused; the None default only means "not sent" (exclude_unset).
    name: Name = None  # type: ignore[assignment]
    species: Species = None  # type: ignore[assignment]
    breed: Annotated[Breed | None, AfterValidator(_empty_is_none)] = None
    sex: Sex = None  # type: ignore[assignment]
    birth_date: BirthDate = None
    status: Status = None  # type: ignore[assignment]


class PetListQuery(Query):
    species: Annotated[Species | None, Field(description="only pets of this species")] = None
    status: Annotated[Status | None, Field(description="only pets with this status")] = None
    q: Annotated[str | None, Text(64, not_blank=False, trimmed=False, min_length=1), Field(description=(
        "name contains this text, case-insensitively (both folded by NFKC then Unicode case folding, the same on "
        "every database: 'οδος' finds 'ΟΔΟΣ', 'ssig' 'ẞig'), accents counting ('emile' does not find 'Émile'); % and _ "
        "are plain characters; control characters are refused, as in a name"))] = None
    owner_id: Annotated[int | None, Field(ge=1, le=MAX_ID, description=(
        "only this owner's pets (callers without pets:admin only ever see pets they are members of)")), QueryInt] = None
    role: Annotated[Role | None, Field(description="only pets on which the caller has this role")] = None
    sort: Annotated[PetSort, Field(description="order of the page; a leading - sorts descending")] = "id"
    limit: Limit = 20
    offset: Offset = 0
    cursor: PageCursor = None
    include_total: IncludeTotal = True
