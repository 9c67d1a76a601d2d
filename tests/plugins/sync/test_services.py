"""The change log's order under concurrent writers: seq is dense and follows commit order, so a reader that polls
`seq > cursor` never sees a gap that a slower transaction fills later (what auto-increment ids would do)."""

from __future__ import annotations

import asyncio

import pytest

from server.changes import Change
from server.plugins.sync.services import log_head, new_entries
from server.services import utcnow
from tests.factories import create_user

WRITERS = 20
WRITES_EACH = 15


@pytest.mark.gen_test(timeout=120)
async def test_concurrent_writers_never_leave_a_gap_behind_a_reader(app):
    """20 transactions at a time, each holding its change a little before committing; the reader must only ever see
    seq head+1, head+2, ... with nothing appearing later below what it has read."""
    user = await create_user(app)
    pet_id = (await app.db.execute(
        "INSERT INTO pets (owner_id, name, species, sex, status, created_at, updated_at, version)"
        " VALUES (%s, 'p', 'dog', 'unknown', 'available', %s, %s, 1)", (user.id, utcnow(), utcnow()))).lastrowid
    assert pet_id is not None
    start = await log_head(app.db)
    done = asyncio.Event()

    async def writer(n: int) -> None:
        for i in range(WRITES_EACH):
            async def write(tx, hold=0.001 * ((n + i) % 3)):  # a slow transaction: others queue behind its counter
                await app.changes.emit(tx, Change("pet", "updated", pet_id, user.id, pet_id=pet_id))
                await asyncio.sleep(hold)
            await app.db.run_transaction(write)

    seen: list[int] = []

    async def reader() -> None:
        cursor = start
        while True:
            finished = done.is_set()
            entries = await new_entries(app.db, after=cursor, limit=1000)
            for seq, entry_pet, member in entries:
                assert seq == cursor + 1, f"gap: {cursor} then {seq}"
                assert (entry_pet, member) == (pet_id, None)
                seen.append(seq)
                cursor = seq
            if finished and not entries:
                return
            await asyncio.sleep(0)

    reading = asyncio.ensure_future(reader())
    await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    done.set()
    await reading
    assert seen == list(range(start + 1, start + WRITERS * WRITES_EACH + 1))
    assert await log_head(app.db) == start + WRITERS * WRITES_EACH
