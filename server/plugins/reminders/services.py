"""Open due items of the pets a user is a member of, and the user's calendar feed (a token kept hashed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

import orjson

from server.db import Dialect, Executor, column
from server.errors import NotFound
from server.plugins.pets.access import member_join
from server.plugins.records.services import Record, row
from server.plugins.reminders.models import CalendarFeed, FeedItem, PetName, Reminder
from server.services import fetch_page, utcnow

# The repeated conditions let SQLite use its partial index.
OPEN_DUE = "records.due_date IS NOT NULL AND records.completed_at IS NULL AND records.due_date <= %s"
ORDER = "records.due_date, records.id"  # overdue dates are the earliest: overdue first, then by date
FEED_PATH = "/v1/calendar/{token}.ics"
RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


def utc_today() -> dt.date:
    """Today's date in UTC: what "overdue" and "within days" count from."""
    return dt.datetime.now(dt.UTC).date()


def member_records(user_id: int, dialect: Dialect) -> tuple[str, tuple[int]]:
    """FROM the records of the pets the user is a member of (any role), and its argument. Reminders are personal:
    member_join of a bare user id, so a pets:admin caller is not reminded of every pet's vaccinations."""
    source, args = member_join(user_id, dialect)
    return f"{source} JOIN records ON records.pet_id = pets.id", args


def reminder(values: list[Any], today: dt.date) -> Reminder:
    """The reminder in a decoded row(dialect, "pets.name", ...): the record's columns, then its pet's name."""
    record = Record.from_list(values)
    due = record.due_date
    fields = {name: getattr(record, name) for name in RECORD_FIELDS}
    return Reminder(**fields, pet=PetName(record.pet_id, values[len(RECORD_FIELDS)]),
                    overdue=due is not None and due < today)


def decoder(today: dt.date) -> Callable[[str], Reminder]:
    """Reads the JSON array of row(dialect, "pets.name") into a reminder."""
    def decode(text: str) -> Reminder:
        return reminder(orjson.loads(text), today)
    return decode


async def list_reminders(db: Executor, *, user_id: int, within_days: int, limit: int, offset: int,
                         today: dt.date | None = None) -> tuple[list[Reminder], int | None]:
    """A page of the open due items up to `within_days` after today (overdue ones included), and the total."""
    today = today or utc_today()
    source, join_args = member_records(user_id, db.dialect)
    return (await fetch_page(db, row=row(db.dialect, "pets.name"), table=source, where=OPEN_DUE,
                            args=(*join_args, today + dt.timedelta(days=within_days)), order=ORDER, limit=limit,
                            offset=offset, decode=decoder(today)))[:2]


async def open_items(db: Executor, *, user_id: int, today: dt.date | None = None) -> list[FeedItem]:
    """Every open due item of the user's pets, whatever its date (the calendar shows them all), with what its
    event's revision counts: the pet's update time and its revisions since the record was created too (a renamed
    pet renames the event; one renamed before the record existed revised no event)."""
    today = today or utc_today()
    source, args = member_records(user_id, db.dialect)
    extra = ("pets.name", "pets.updated_at", "pets.version", "records.pet_version_at_creation")
    rows = await db.fetch_all(
        f"SELECT {row(db.dialect, *extra)} FROM {source}"  # noqa: S608
        " WHERE records.due_date IS NOT NULL AND records.completed_at IS NULL"
        f" ORDER BY {ORDER}", args)
    items = []
    for found in rows:
        values = orjson.loads(column(found[0], str))
        item = reminder(values, today)
        pet_updated_at, pet_version, pet_version_then = values[-3:]
        pet_revisions = int(pet_version) - int(pet_version_then)
        items.append(FeedItem(item, max(item.updated_at, dt.datetime.fromisoformat(pet_updated_at)),
                              item.version - 1 + pet_revisions))
    return items


def token_hash(token: str) -> str:
    """What is stored of a feed token: its SHA-256, hex (the token has 256 random bits: no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_feed(db: Executor, *, user_id: int) -> CalendarFeed:
    """A new feed token for the user, replacing (revoking) any earlier one; the URL is the only copy of it."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    dialect = db.dialect  # its fixed clauses only: the values are parameters
    replace = (f"{dialect.on_conflict_update('user_id')} token_hash = {dialect.inserted('token_hash')},"
               f" created_at = {dialect.inserted('created_at')}")
    await db.execute("INSERT INTO calendar_feeds (user_id, token_hash, created_at) VALUES (%s, %s, %s)" + replace,  # noqa: S608
                     (user_id, token_hash(token), now))
    return CalendarFeed(FEED_PATH.format(token=token), now)


async def delete_feed(db: Executor, *, user_id: int) -> None:
    """Revoke the user's feed; 404 when there is none."""
    result = await db.execute("DELETE FROM calendar_feeds WHERE user_id = %s", (user_id,))
    if result.rowcount == 0:
        raise NotFound()


async def feed_owner(db: Executor, *, token: str) -> int:
    """The user whose feed this token opens; 404 for an unknown or revoked one (or a disabled account)."""
    found = await db.fetch_one(
        "SELECT calendar_feeds.user_id FROM calendar_feeds JOIN users ON users.id = calendar_feeds.user_id"
        " WHERE calendar_feeds.token_hash = %s AND users.disabled = 0", (token_hash(token),))
    if found is None:
        raise NotFound()
    return column(found[0], int)


async def revoke_feed(tx: Executor, *, user_id: int) -> None:
    """Drop the user's feed, if any (credentials changed: the old URL must stop working)."""
    await tx.execute_later("DELETE FROM calendar_feeds WHERE user_id = %s", (user_id,))
