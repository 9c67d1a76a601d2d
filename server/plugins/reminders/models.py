"""The reminders' query and answers: open due items of the caller's pets, and the calendar feed's address."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from server.plugins.records.services import Record
from server.schemas.common import Limit, Offset, QueryInt
from server.validation import Query


class ReminderQuery(Query):
    within_days: Annotated[int, Field(ge=1, le=366, description=(
        "due items up to this many days after today (UTC); overdue ones always")), QueryInt] = 30
    limit: Limit = 20
    offset: Offset = 0


@dataclass(frozen=True, slots=True)
class PetName:
    id: int
    name: str


@dataclass(slots=True)
class Reminder(Record):
    """An open due item: the record, its pet, and whether its due date is already past (UTC)."""

    pet: PetName
    overdue: bool


@dataclass(frozen=True, slots=True)
class FeedItem:
    """An open due item as the calendar feed shows it. Its event carries the pet's name, so it is revised when the
    record or the pet changes: `revised_at` is the later of their update times, and `sequence` adds up their
    revisions since the record was created (record version - 1 + the pet's version now - its version then; both
    only grow, so it never goes back, and a new event starts at 0 as RFC 5545 3.8.7.4 wants)."""

    item: Reminder
    revised_at: dt.datetime
    sequence: int


@dataclass(frozen=True, slots=True)
class CalendarFeed:
    """The caller's feed: its URL (which holds the token: shown once, kept only hashed) and when it was made."""

    url: str
    created_at: dt.datetime
