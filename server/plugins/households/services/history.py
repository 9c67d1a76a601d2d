"""A pet's history: a listener on app.changes writes one row per change in the change's own transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from server.changes import Change
from server.db import Executor
from server.plugins.households.models import Actor, HistoryEntry, PageQuery
from server.services import DUMPS_OPTIONS, Found, Key, Sort, fetch_page, json_row, utcnow

ROW = json_row("id, at, actor_id, (SELECT nickname FROM users WHERE users.id = pet_history.actor_id), type, action,"
               " object_id, changed")
# Never kept, whatever a service puts in `changed`: the history is read by every member of the pet.
SECRET_FIELDS = frozenset({"password", "password_hash", "current_password", "token", "token_hash", "secret",
                           "email"})


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


async def record_change(tx: Executor, change: Change) -> None:
    """The app.changes listener: one INSERT for a change that belongs to a pet. It selects the pet so that the
    change that deletes the pet (its history goes with it) writes nothing instead of failing the foreign key."""
    if change.pet_id is None:
        return
    changed = {name: list(values) for name, values in change.changed.items() if name not in SECRET_FIELDS}
    await tx.execute_later(
        "INSERT INTO pet_history (pet_id, at, actor_id, type, action, object_id, changed)"
        " SELECT id, %s, %s, %s, %s, %s, %s FROM pets WHERE id = %s",
        (utcnow(), change.actor_id, change.type, change.action, change.object_id,
         orjson.dumps(changed, default=_json_value, option=DUMPS_OPTIONS).decode(), change.pet_id))


def decode(text: str) -> HistoryEntry:
    """A history row (ROW) as its entry."""
    r = orjson.loads(text)
    changed = r[7] if isinstance(r[7], dict) else orjson.loads(r[7])
    return HistoryEntry(r[0], dt.datetime.fromisoformat(r[1]), Actor(r[2], r[3]), r[4], r[5], r[6], changed)


NEWEST_FIRST = Sort((Key("pet_history.at", "at", dt.datetime), Key("pet_history.id", "id", int)), descending=True)


async def list_history(db: Executor, *, pet_id: int, query: PageQuery) -> Found[HistoryEntry]:
    """A page of the pet's history, newest first, the total (unless include_total=false) and the next page's
    cursor."""
    return await fetch_page(db, row=ROW, table="pet_history", where="pet_id = %s", args=(pet_id,), sort=NEWEST_FIRST,
                            sort_name="history", limit=query.limit, offset=query.offset, cursor=query.cursor,
                            count=query.include_total, decode=decode)
