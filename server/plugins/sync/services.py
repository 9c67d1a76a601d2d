"""The change log's SQL: written by a listener in the writer's transaction, read as pages of a user's changes.

Ordering: a writer only inserts its log row (seq NULL); the sequencer (sequencer.py) numbers committed rows densely
in its own transaction, so seq is dense and a reader that sees seq n sees every change below n, without writers
serializing on one row. Auto-increment ids alone are neither gap-free nor in commit order (issue 15).

A page answers with each object's state *now* (as its GET returns it, in one snapshot with the log read), at
the position of its last change in the page: a client resuming from any position gets every later state."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.changes import Change
from server.db import Executor, Row, column, nullable
from server.errors import SyncCursorExpired
from server.plugins.pets.pet import MEMBER_ROW, Pet
from server.plugins.records.services import Record
from server.plugins.records.services import row as record_row
from server.plugins.sync.cursor import SNAPSHOT_TYPES, Position
from server.plugins.sync.sequencer import sequence
from server.services import utcnow


@dataclass(frozen=True, slots=True)
class SyncChange:
    """One entry of a sync page or event: the object's current state for this user, or its deletion."""

    type: str
    id: int
    op: str  # "upsert" | "delete"
    version: int  # the log position (seq) it answers for: grows with every change of the object
    data: Any  # the object as its GET returns it; None on delete
    position: Position = field(compare=False)

    def as_json(self) -> dict[str, Any]:
        """The change as the API sends it."""
        return {"type": self.type, "id": self.id, "op": self.op, "version": self.version, "data": self.data}


@dataclass(frozen=True, slots=True)
class SyncPage:
    changes: list[SyncChange]
    position: Position
    has_more: bool


# ---- writing: the listener on app.changes
async def record_change(tx: Executor, change: Change) -> bool:
    """Log one change in the writer's transaction (both or neither), with the user whose access it grants or ends;
    True when it wrote a row for the sequencer to number once the transaction commits."""
    if change.type == "account" and change.action == "deleted":  # it syncs no more: what it could see goes
        await tx.execute_later("DELETE FROM sync_access WHERE user_id = %s", (change.object_id,))
    elif change.pet_id is None:  # other account changes: a client learns of them by its token's revocation
        return False
    await tx.execute_later(
        "INSERT INTO sync_changes (type, object_id, pet_id, user_id, action, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (change.type, change.object_id, change.pet_id, _gains_or_loses(change), change.action, utcnow()))
    return True


def _gains_or_loses(change: Change) -> int | None:
    """The user whose access to the pet this change grants or ends (the log's user_id: it wakes their streams)."""
    if change.type == "member":
        return change.object_id
    if change.type == "pet" and change.action == "created":
        owner = getattr(change.data, "owner_id", None) or change.actor_id
        return owner if isinstance(owner, int) else None
    return None


async def purge_changes(db: Executor, *, before: dt.datetime) -> int:
    """Delete the log entries written before `before` (and access spans ended by then); a cursor below the
    highest deleted seq answers 410/1012 from now on. Returns that seq (0: nothing purged)."""

    await sequence(db)  # a row older than `before` but still unnumbered would outlive the purge

    async def purge(tx: Executor) -> int:
        row = await tx.fetch_one("SELECT MAX(seq) FROM sync_changes WHERE created_at < %s", (before,))
        through = nullable(row[0], int) if row else None
        if through is None:
            return 0
        await tx.execute("DELETE FROM sync_changes WHERE seq <= %s", (through,))
        await tx.execute("DELETE FROM sync_access WHERE revoked_seq <= %s", (through,))
        await tx.execute("UPDATE sync_counter SET value = %s WHERE name = 'purged_through' AND value < %s",
                         (through, through))
        return through

    return await db.run_transaction(purge)


async def log_head(db: Executor) -> int:
    """The seq of the last committed change."""
    row = await db.fetch_one("SELECT value FROM sync_counter WHERE name = 'seq'")
    return column(row[0], int) if row else 0


async def new_entries(db: Executor, *, after: int, limit: int) -> list[tuple[int, int | None, int | None]]:
    """(seq, pet_id, member user_id) of the changes after `after`: what the event streams' poller reads."""
    rows = await db.fetch_all("SELECT seq, pet_id, user_id FROM sync_changes WHERE seq > %s ORDER BY seq LIMIT %s",
                              (after, limit))
    return [(column(r[0], int), nullable(r[1], int), nullable(r[2], int)) for r in rows]


async def visible_pet_ids(db: Executor, *, user_id: int) -> set[int]:
    """The pets whose changes concern the user now (an event stream's interest)."""
    rows = await db.fetch_all("SELECT pet_id FROM sync_access WHERE user_id = %s AND revoked_seq IS NULL", (user_id,))
    return {column(r[0], int) for r in rows}


# ---- reading: pages of one user's changes
async def read_changes(db: Executor, *, user_id: int, position: Position | None, limit: int,
                       records: bool) -> SyncPage:
    """The next page from `position` (None: a first sync, from the listing), in one snapshot; 410/1012 when the
    log no longer reaches back to it. `records`: the records plugin is enabled."""

    async def read(tx: Executor, position: Position) -> SyncPage:
        purged = await tx.fetch_one("SELECT value FROM sync_counter WHERE name = 'purged_through'")
        if purged is not None and position.seq < column(purged[0], int):
            raise SyncCursorExpired()
        if position.snapshot is not None:
            return await _listing_page(tx, user_id=user_id, position=position, limit=limit, records=records)
        return await _log_page(tx, user_id=user_id, position=position, limit=limit, records=records)

    async with db.transaction() as tx:
        return await read(tx, position or Position(await log_head(tx), snapshot=SNAPSHOT_TYPES[0]))


@dataclass(frozen=True, slots=True)
class _Item:
    type: str
    id: int
    position: Position


async def _log_page(tx: Executor, *, user_id: int, position: Position, limit: int, records: bool) -> SyncPage:
    since = ">=" if position.key is not None else ">"
    rows = await tx.fetch_all(  # the changes made while the user could see the pet (its access spans)
        "SELECT seq, type, object_id, pet_id, user_id, action FROM sync_changes c"  # noqa: S608 - fixed operator
        f" WHERE seq {since} %s AND EXISTS (SELECT 1 FROM sync_access a WHERE a.pet_id = c.pet_id"
        " AND a.user_id = %s AND a.granted_seq <= c.seq AND (a.revoked_seq IS NULL OR a.revoked_seq >= c.seq))"
        " ORDER BY seq LIMIT %s", (position.seq, user_id, limit + 1))
    items = await _items(tx, rows, user_id=user_id, position=position, records=records)
    if len(items) > limit:
        taken, end, more = items[:limit], items[limit - 1].position, True
    else:
        end = Position(column(rows[-1][0], int)) if rows else position
        taken, more = items, len(rows) > limit
    changes = await _resolve(tx, _last_of_each(taken), user_id=user_id)
    return SyncPage(changes, end, more)


async def _items(tx: Executor, rows: Sequence[Row], *, user_id: int, position: Position,
                 records: bool) -> list[_Item]:
    """The log rows as objects to send, in order. A change of the caller's own membership (shared, removed, ...)
    stands for the pet and the records it had at that change's seq: gained access sends them, lost access deletes
    them (those deleted since included: their deletion came after the span, outside the caller's log). Never a
    record the caller could not have held: one created after a removal, or deleted before a share.
    A group with no item (another member's change) still moves the position past its row."""
    own = [(column(r[3], int), column(r[0], int)) for r in rows if r[1] == "member" and r[4] == user_id]
    held = await _records_at(tx, own, after=position.seq) if own and records else {}
    items = []
    for seq_value, kind, object_id, pet_value, member, action in rows:
        seq, pet_id = column(seq_value, int), column(pet_value, int)
        if kind == "member" and member == user_id:
            group = [("pet", pet_id)] + [("record", r) for r in held.get((pet_id, seq), [])]
        elif kind == "member":  # another member: the caller's copy changes when the owner or the version does
            group = [("pet", pet_id)] if action in ("transferred", "role_changed") else []
        elif kind in ("pet", "record"):
            group = [(str(kind), column(object_id, int))]
        else:
            continue
        for index, (item_type, item_id) in enumerate(group):
            key = 0 if item_type == "pet" else item_id
            if seq == position.seq and position.key is not None and key <= position.key:
                continue
            last = index == len(group) - 1
            items.append(_Item(item_type, item_id, Position(seq, None if last else key)))
    return items


async def _records_at(tx: Executor, changes: list[tuple[int, int]], *, after: int) -> dict[tuple[int, int], list[int]]:
    """The ids of the records each (pet, seq) had at that seq, by id: those there now or deleted since `after` (every
    such seq is past it), less those created after it or deleted by it. A row not numbered yet counts as after
    every seq (its record comes, or goes, with its own row once numbered); a record with no creation row since
    `after` is older than it. One statement, whatever the number of changes."""
    pets = sorted({pet_id for pet_id, _ in changes})
    marks = ", ".join(["%s"] * len(pets))
    there: dict[int, set[int]] = {}
    born: dict[int, float] = {}
    died: dict[int, float] = {}
    for record_id, pet_value, action, seq_value in await tx.fetch_all(
            f"SELECT id, pet_id, NULL, NULL FROM records WHERE pet_id IN ({marks}) UNION ALL"  # noqa: S608
            f" SELECT object_id, pet_id, action, seq FROM sync_changes WHERE pet_id IN ({marks}) AND type = 'record'"
            " AND action IN ('created', 'deleted') AND (seq > %s OR seq IS NULL)", (*pets, *pets, after)):
        rid, seq = column(record_id, int), nullable(seq_value, int)
        if action == "created":
            born[rid] = math.inf if seq is None else seq
            continue
        there.setdefault(column(pet_value, int), set()).add(rid)
        if action == "deleted":
            died[rid] = math.inf if seq is None else seq
    return {(pet_id, seq): sorted(r for r in there.get(pet_id, ()) if born.get(r, 0) <= seq < died.get(r, math.inf))
            for pet_id, seq in changes}


def _last_of_each(items: list[_Item]) -> list[_Item]:
    """Each object once, at its last change (several changes between two syncs arrive as the latest state)."""
    last = {(item.type, item.id): item for item in items}
    return [item for item in items if last[(item.type, item.id)] is item]


async def _resolve(tx: Executor, items: list[_Item], *, user_id: int) -> list[SyncChange]:
    """Each object as the user may see it now: an upsert with its data, or a delete."""
    found: dict[tuple[str, int], Any] = {}
    pet_ids = [item.id for item in items if item.type == "pet"]
    record_ids = [item.id for item in items if item.type == "record"]
    if pet_ids:
        found.update((("pet", p.id), p) for p in await _pets(tx, user_id=user_id, where="pets.id IN", ids=pet_ids))
    if record_ids:
        found.update((("record", r.id), r) for r in await _records(tx, user_id=user_id, ids=record_ids))
    out = []
    for item in items:
        data = found.get((item.type, item.id))
        out.append(SyncChange(item.type, item.id, "delete" if data is None else "upsert", item.position.seq, data,
                              item.position))
    return out


async def _listing_page(tx: Executor, *, user_id: int, position: Position, limit: int, records: bool) -> SyncPage:
    """A page of the first sync: every pet the user may see, then every record of them, by id; then the log from
    the head the listing started at (what changed meanwhile comes again from there)."""
    changes: list[SyncChange] = []
    kind, after = position.snapshot, position.after_id
    while kind is not None and len(changes) < limit:
        room = limit - len(changes)
        if kind == "pet":
            objects: list[Any] = await _pets(tx, user_id=user_id, where="pets.id >", ids=[after], limit=room + 1)
        else:
            objects = await _records(tx, user_id=user_id, after=after, limit=room + 1)
        for obj in objects[:room]:
            after = obj.id
            changes.append(SyncChange(kind, obj.id, "upsert", position.seq, obj,
                                      Position(position.seq, snapshot=kind, after_id=obj.id)))
        if len(objects) > room:
            return SyncPage(changes, Position(position.seq, snapshot=kind, after_id=after), True)
        following = SNAPSHOT_TYPES.index(kind) + 1
        kind, after = (SNAPSHOT_TYPES[following] if following < len(SNAPSHOT_TYPES) and records else None), 0
        while kind is not None and len(changes) == limit and not await _any_after(tx, kind, user_id=user_id):
            following = SNAPSHOT_TYPES.index(kind) + 1  # the page is full and the kinds left are empty: listed
            kind = SNAPSHOT_TYPES[following] if following < len(SNAPSHOT_TYPES) else None
    end = Position(position.seq) if kind is None else Position(position.seq, snapshot=kind, after_id=after)
    if changes and kind is None:  # the last object of the listing: resuming after it goes on in the log
        last = changes[-1]
        changes[-1] = SyncChange(last.type, last.id, last.op, last.version, last.data, end)
    return SyncPage(changes, end, kind is not None)


async def _any_after(tx: Executor, kind: str, *, user_id: int) -> bool:
    """Whether the listing has any object of `kind` (a page that ends exactly at a kind's end says has_more only
    when there is more)."""
    if kind == "pet":
        return bool(await _pets(tx, user_id=user_id, where="pets.id >", ids=[0], limit=1))
    return bool(await _records(tx, user_id=user_id, limit=1))


async def _pets(tx: Executor, *, user_id: int, where: str, ids: list[int], limit: int | None = None) -> list[Pet]:
    """The user's pets (with the user's role) whose id is `IN` ids or `>` ids[0], by id. Memberships only, for
    pets:admin callers too (not access.member_join's every-pet LEFT JOIN): the log's access spans follow them."""
    cond = f"{where} ({', '.join(['%s'] * len(ids))})" if where.endswith("IN") else f"{where} %s"
    tail, args = ("", ()) if limit is None else (" LIMIT %s", (limit,))
    rows = await tx.fetch_all(
        f"SELECT {MEMBER_ROW} FROM pets JOIN pet_members ON pet_members.pet_id = pets.id"  # noqa: S608
        f" AND pet_members.user_id = %s WHERE {cond} ORDER BY pets.id{tail}", (user_id, *ids, *args))
    return [Pet.from_json(column(r[0], str)) for r in rows]


async def _records(tx: Executor, *, user_id: int, ids: list[int] | None = None, after: int = 0,
                   limit: int | None = None) -> list[Record]:
    """Records of the user's pets: those in ids, or those after an id (by id)."""
    if ids is not None:
        cond, args = f"id IN ({', '.join(['%s'] * len(ids))})", tuple(ids)
    else:
        cond, args = "id > %s", (after,)
    tail, extra = ("", ()) if limit is None else (" LIMIT %s", (limit,))
    rows = await tx.fetch_all(
        f"SELECT {record_row(tx.dialect)} FROM records WHERE pet_id IN"  # noqa: S608
        f" (SELECT pet_id FROM pet_members WHERE user_id = %s) AND {cond} ORDER BY id{tail}", (user_id, *args, *extra))
    return [Record.from_json(column(r[0], str)) for r in rows]
