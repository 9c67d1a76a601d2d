"""The change log's order under concurrent writers: writers only insert their rows, the sequencer numbers committed
rows densely in id order, so a reader that polls `seq > cursor` never sees a gap that a slower transaction fills
later (what auto-increment ids would do), and a row committed late gets a number after everything numbered before."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.changes import Change
from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import log_head, new_entries, visible_pet_ids
from server.services import utcnow
from tests.factories import both_backends, create_pet, create_user, user_with_token
from tests.plugins.sync.client import apply, share
from tests.plugins.sync.test_sync import sync

WRITERS = 20
WRITES_EACH = 15


@both_backends
@pytest.mark.gen_test(timeout=120)
async def test_concurrent_writers_and_sequencers_never_leave_a_gap_behind_a_reader(app):
    """20 transactions at a time, each holding its change a little before committing, their commits nudging the
    sequencer, and a reader that runs a pass of its own before each read (as GET /v1/sync and the event hub do): the
    reader must only ever see seq head+1, head+2, ... with nothing appearing later below what it has read."""
    user = await create_user(app)
    pet_id = (await app.db.execute(
        "INSERT INTO pets (owner_id, name, species, sex, status, created_at, updated_at, version)"
        " VALUES (%s, 'p', 'dog', 'unknown', 'available', %s, %s, 1)", (user.id, utcnow(), utcnow()))).lastrowid
    assert pet_id is not None
    start = await log_head(app.db)
    done = asyncio.Event()

    async def writer(n: int) -> None:
        for i in range(WRITES_EACH):
            async def write(tx: Any, hold: float = 0.001 * ((n + i) % 3)) -> None:  # a slow one: others commit first
                await app.changes.emit(tx, Change("pet", "updated", pet_id, user.id, pet_id=pet_id))
                await asyncio.sleep(hold)
            await app.db.run_transaction(write)

    seen: list[int] = []

    async def reader() -> None:
        cursor = start
        while True:
            finished = done.is_set()
            await sequence(app.db)
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
    total = WRITERS * WRITES_EACH
    assert seen == list(range(start + 1, start + total + 1))
    assert await log_head(app.db) == start + total
    assert await app.db.fetch_one("SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM sync_changes"
                                  " WHERE pet_id = %s", (pet_id,)) == (total, total, start + 1, start + total)


@pytest.mark.gen_test(timeout=60)
async def test_a_change_committed_late_below_a_numbered_one_reaches_a_resuming_client_once_and_in_order(api, app):
    """A writer's transaction stays open (its log row has the lower id) while another commits and is numbered and
    read; once the first commits it is numbered after it, and the client resuming from its cursor gets it, once."""
    await app.sync_sequencer.stop()  # the passes run when this test says (GET /v1/sync runs one inline)
    owner, token = await user_with_token(app)
    first = await create_pet(api, token, name="First")
    state: dict[tuple[str, int], Any] = {}
    page = await sync(api, token)
    apply(state, page["changes"])
    async with app.db.transaction() as slow:  # a second connection of the pool, held open
        await slow.execute("UPDATE pets SET name = 'Late', version = version + 1 WHERE id = %s", (first["id"],))
        await app.changes.emit(slow, Change("pet", "updated", first["id"], owner.id, pet_id=first["id"]))
        await slow.fetch_one("SELECT 1")  # the log row, a write nobody reads, goes out now: it takes the lower id
        second = await create_pet(api, token, name="Second")  # commits while `slow` is open
        assert await sequence(app.db) == 1  # the committed row only
        page = await sync(api, token, page["cursor"])
        assert [(c["type"], c["id"], c["op"], c["data"]["name"]) for c in page["changes"]] == [
            ("pet", second["id"], "upsert", "Second")]
        apply(state, page["changes"])
        before = page["changes"][0]["version"]
    assert await sequence(app.db) == 1  # now `slow` has committed
    page = await sync(api, token, page["cursor"])
    assert [(c["type"], c["id"], c["op"], c["data"]["name"]) for c in page["changes"]] == [
        ("pet", first["id"], "upsert", "Late")]
    assert page["changes"][0]["version"] == before + 1
    apply(state, page["changes"])
    assert (await sync(api, token, page["cursor"]))["changes"] == []
    assert {k: v["name"] for k, v in state.items()} == {("pet", first["id"]): "Late", ("pet", second["id"]): "Second"}
    rows = await app.db.fetch_all("SELECT id, seq FROM sync_changes WHERE pet_id IN (%s, %s) AND action = 'updated'",
                                  (first["id"], second["id"]))
    [(late_id, late_seq)] = rows
    created = await app.db.fetch_one("SELECT id, seq FROM sync_changes WHERE object_id = %s AND action = 'created'",
                                     (second["id"],))
    assert created is not None and late_id < created[0] and late_seq == created[1] + 1  # lower id, later number


async def _held_then(app: Any, first: Any, second: Any) -> None:
    """Insert the log row of `first` (a transaction left open), commit `second` whole, then finish `first`: the
    rows' ids are in the opposite order of the commits, as across Galera nodes."""
    async with app.db.transaction() as held:
        await first(held, log=True)
        await held.fetch_one("SELECT 1")  # the log row, a write nobody reads, goes out now: it takes the lower id
        await app.db.run_transaction(lambda tx: second(tx, log=True, write=True))
        await first(held, write=True)


@pytest.mark.gen_test(timeout=60)
async def test_access_follows_the_memberships_not_the_ids_when_a_removal_and_a_share_commit_out_of_id_order(app):
    await app.sync_sequencer.stop()
    owner, member, other = await create_user(app), await create_user(app), await create_user(app)
    pet_id = (await app.db.execute(
        "INSERT INTO pets (owner_id, name, species, sex, status, created_at, updated_at, version)"
        " VALUES (%s, 'p', 'dog', 'unknown', 'available', %s, %s, 1)", (owner.id, utcnow(), utcnow()))).lastrowid
    await share(app, pet_id=pet_id, user_id=member.id, owner_id=owner.id)
    await sequence(app.db)
    assert await visible_pet_ids(app.db, user_id=member.id) == {pet_id}

    def membership(user_id: int, action: str) -> Any:
        async def step(tx: Any, *, log: bool = False, write: bool = False) -> None:
            if write and action == "shared":
                await tx.execute("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, 'viewer', %s)",
                                 (pet_id, user_id, utcnow()))
            elif write:
                await tx.execute("DELETE FROM pet_members WHERE pet_id = %s AND user_id = %s", (pet_id, user_id))
            if log:
                await app.changes.emit(tx, Change("member", action, user_id, owner.id, pet_id=pet_id))
        return step

    # removed, then shared again (the share's row has the lower id): still a member, the span stays open
    await _held_then(app, membership(member.id, "shared"), membership(member.id, "removed"))
    # shared, then removed (the removal's row has the lower id): not a member, no span is left open
    await _held_then(app, membership(other.id, "removed"), membership(other.id, "shared"))
    assert await sequence(app.db) == 4
    assert await visible_pet_ids(app.db, user_id=member.id) == {pet_id}
    assert await visible_pet_ids(app.db, user_id=other.id) == set()
    [(granted, revoked)] = await app.db.fetch_all("SELECT granted_seq, revoked_seq FROM sync_access WHERE user_id = %s",
                                                  (other.id,))
    assert granted == revoked == await log_head(app.db)  # opened by the share's row, closed at the pass's end


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_commit_alone_gets_its_rows_numbered_and_nudges_together_share_one_pass(app):
    user = await create_user(app)
    start = await log_head(app.db)

    async def write(tx: Any) -> None:
        await app.changes.emit(tx, Change("pet", "updated", 1, user.id, pet_id=1))

    await asyncio.gather(*(app.db.run_transaction(write) for _ in range(10)))  # no pass of the test's own
    await app.sync_sequencer.idle()
    assert await log_head(app.db) == start + 10
    assert await app.db.fetch_one("SELECT COUNT(*) FROM sync_changes WHERE seq IS NULL") == (0,)
    print(f"\n10 concurrent commits on {app.db.dialect.name}: {app.sync_sequencer.passes} sequencer passes")

    passes = app.sync_sequencer.passes
    for _ in range(5):
        app.sync_sequencer.nudge()
    await app.sync_sequencer.idle()
    assert app.sync_sequencer.passes == passes + 1

    await app.db.run_transaction(write)  # committed just before the worker stops: numbered before it exits
    await app.sync_sequencer.stop()
    assert await app.db.fetch_one("SELECT COUNT(*) FROM sync_changes WHERE seq IS NULL") == (0,)
    assert await log_head(app.db) == start + 11


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_share_numbered_after_its_members_account_was_deleted_leaves_no_access_row(app):
    """The deleted account's rows go at its deletion; a share committed before it but numbered in the same pass must
    not bring a sync_access row back (nothing may be left naming the account)."""
    await app.sync_sequencer.stop()
    owner, member = await create_user(app), await create_user(app)
    pet_id = (await app.db.execute(
        "INSERT INTO pets (owner_id, name, species, sex, status, created_at, updated_at, version)"
        " VALUES (%s, 'p', 'dog', 'unknown', 'available', %s, %s, 1)", (owner.id, utcnow(), utcnow()))).lastrowid
    await share(app, pet_id=pet_id, user_id=member.id, owner_id=owner.id)

    async def delete_account(tx: Any) -> None:
        await tx.execute("DELETE FROM pet_members WHERE user_id = %s", (member.id,))
        await app.changes.emit(tx, Change("account", "deleted", member.id, member.id))

    await app.db.run_transaction(delete_account)
    assert await sequence(app.db) == 2
    assert await app.db.fetch_all("SELECT pet_id FROM sync_access WHERE user_id = %s", (member.id,)) == []
