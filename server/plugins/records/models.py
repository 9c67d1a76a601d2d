"""Request models of a pet's health records (dates as the pets' models take them)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

from server.plugins.pets.models import Date
from server.schemas.common import Limit, Offset, PageCursor, PatchBody, Text
from server.validation import Body, Query

RecordKind = Literal["vaccination", "vet_visit", "weight", "medication"]
# RFC 3339 date-time (a zone is required: Z or an offset); kept as UTC to the microsecond, like DATETIME(6).
INSTANT_RE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")
# RFC 3339 5.6 time-numoffset: hours 00-23, minutes 00-59 (fromisoformat would carry +05:99 into the hours).
OFFSET_RE = re.compile(r"[+-]([01][0-9]|2[0-3]):[0-5][0-9]")


def _instant(value: Any) -> Any:
    """Only an RFC 3339 string with a zone is an instant (pydantic alone would take numbers and naive times);
    kept as naive UTC like every DATETIME(6) column: digits past the microsecond are dropped, a leap second (:60)
    counts as the second before it, and one whose UTC falls outside the years 1-9999 is the latest or earliest
    datetime, which the bounds after it name as such."""
    if isinstance(value, dt.datetime):
        return value
    match = INSTANT_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PydanticCustomError("datetime_format", "must be a date and time with a zone, as YYYY-MM-DDTHH:MM:SSZ")
    day, minutes, seconds, fraction, zone = match.groups()
    if zone not in "Zz" and not OFFSET_RE.fullmatch(zone):
        raise PydanticCustomError("datetime_value", "must be a valid date and time")
    seconds = "59" if seconds == "60" else seconds  # 61 and beyond are no second at all: fromisoformat refuses them
    text = f"{day}T{minutes}:{seconds}{(fraction or '')[:7]}{'+00:00' if zone in 'Zz' else zone}"
    try:
        local = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError("datetime_value", "must be a valid date and time") from None
    try:
        return local.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # valid, but its UTC lies past 9999-12-31 or before year 1: out of range, not malformed
        return dt.datetime.max if local.year == dt.MAXYEAR else dt.datetime.min  # the bounds refuse it by name


def _unsigned_zero(value: float) -> float:
    """-0.0 as 0.0: neither database keeps the sign of a zero, so the POST answer, its replay and the created change
    say what every later read of the same version says (0.0 + -0.0 is 0.0; any other number stays as it is)."""
    return value + 0.0


Note = Annotated[str, Text(2000, multiline=True)]
Measure = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-1e12, le=1e12), AfterValidator(_unsigned_zero)]
EARLIEST = dt.date(1900, 1, 1)
YEARS_AHEAD = 10
BOUNDS = f"from {EARLIEST.isoformat()} to {YEARS_AHEAD} years after today (UTC)"


def _within_bounds(value: dt.date | None) -> dt.date | None:
    """A record's dates lie between 1900-01-01 and YEARS_AHEAD years after today: a typo such as 0202 or
    2202 is refused rather than stored."""
    if value is None:
        return value
    if value < EARLIEST:
        raise PydanticCustomError("date_too_early", f"must not be before {EARLIEST.isoformat()}")
    today = dt.datetime.now(dt.UTC).date()
    try:
        latest = today.replace(year=today.year + YEARS_AHEAD)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year + YEARS_AHEAD, day=28)
    if value > latest:
        raise PydanticCustomError("date_too_late", f"must not be more than {YEARS_AHEAD} years after today")
    return value


# The lower bound in the document too (years 1900-9999); the upper one in words only: a pattern of the dates up to
# ten years from today would change the document every day.
Since1900 = Annotated[Date, WithJsonSchema({"type": "string", "format": "date",
                                            "pattern": "^(19[0-9]{2}|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}$"})]
RecordDate = Annotated[Since1900, AfterValidator(_within_bounds), Field(description=f"YYYY-MM-DD, {BOUNDS}")]
DueDate = Annotated[Since1900 | None, AfterValidator(_within_bounds), Field(
    description=f"YYYY-MM-DD: when it is next due (the next dose or vaccination), {BOUNDS}")]
COMPLETION_SLACK = dt.timedelta(days=1)


def _done_by_now(value: dt.datetime | None) -> dt.datetime | None:
    """A completion lies between 1900-01-01 and now, like a record's dates a typo such as 0202 or 2099 is refused
    rather than stored (an item done in 2099 would leave the reminders); a day of slack past now for a device whose
    clock or zone is set wrong."""
    if value is None:
        return value
    if value.date() < EARLIEST:
        raise PydanticCustomError("date_too_early", f"must not be before {EARLIEST.isoformat()}")
    if value > dt.datetime.now(dt.UTC).replace(tzinfo=None) + COMPLETION_SLACK:
        raise PydanticCustomError("date_in_future", "must not be in the future")
    return value


Instant = Annotated[dt.datetime, BeforeValidator(_instant)]
CompletedAt = Annotated[Instant | None, AfterValidator(_done_by_now), Field(
    description=f"when the due item was done (RFC 3339 with a zone: Z or an offset from -23:59 to +23:59), from "
                f"{EARLIEST.isoformat()}T00:00:00Z to now (a day later is allowed for a device's clock); null: "
                f"still open")]


class RecordCreate(Body):
    kind: RecordKind
    date: RecordDate
    note: Note | None = None
    value: Measure | None = None
    due_date: DueDate = None


class RecordUpdate(PatchBody):
    """Only the fields sent are changed; null clears one (completed_at: null reopens a done item)."""

    note: Note | None = None
    value: Measure | None = None
    due_date: DueDate = None
    completed_at: CompletedAt = None


class RecordListQuery(Query):
    kind: Annotated[RecordKind | None, Field(description="only records of this kind")] = None
    limit: Limit = 20
    offset: Offset = 0
    cursor: PageCursor = None
