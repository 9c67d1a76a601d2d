"""The change log's sequencer on Galera: writers on nodes 1 and 2 only insert their rows, sequencer passes run at once
on all three nodes (their counter-row updates certify against each other; the losers replay or give up), and a
reader through node 3 must only ever see seq head+1, head+2, ...: every row numbered once, none below a number read."""

from __future__ import annotations

import asyncio
import collections
import itertools

import pytest

from server.changes import Change
from server.db import Database, Executor, connect
from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import log_head, new_entries, record_change
from tests.cluster.conftest import CLUSTER_CONFIG, node_order_url
from tests.conftest import test_config as profile_config
from tests.galera import GaleraCluster

pytestmark = pytest.mark.cluster
WRITERS = 8
WRITES_EACH = 40
MARK = 7_000_000_000  # the rows' pet_id: apart from what other tests logged


@pytest.mark.gen_test(timeout=180)
async def test_passes_on_three_nodes_number_every_row_once_with_no_gap_behind_a_reader(galera: GaleraCluster):
    dbs: list[Database] = [await connect(profile_config(database_url=node_order_url(galera, n), **CLUSTER_CONFIG))
                           for n in (1, 2, 3)]
    try:
        await sequence(dbs[0])
        start = await log_head(dbs[2])
        ids = itertools.count(MARK)
        writing_done, all_numbered = asyncio.Event(), asyncio.Event()
        outcome: collections.Counter[str] = collections.Counter()

        async def writer(n: int) -> None:
            db = dbs[n % 2]
            for _ in range(WRITES_EACH):
                async def write(tx: Executor, object_id: int = next(ids)) -> None:
                    await record_change(tx, Change("pet", "updated", object_id, None, pet_id=MARK))
                await db.run_transaction(write)

        async def sequencer(db: Database, replay: bool) -> None:
            while not writing_done.is_set():
                outcome["numbered" if await sequence(db, replay=replay) else "nothing"] += 1
                await asyncio.sleep(0.005)

        seen: list[int] = []

        async def reader() -> None:
            cursor = start
            while True:
                finished = all_numbered.is_set()
                entries = await new_entries(dbs[2], after=cursor, limit=1000)
                for seq, _pet, _member in entries:
                    assert seq == cursor + 1, f"gap: {cursor} then {seq}"
                    seen.append(seq)
                    cursor = seq
                if finished and not entries:
                    return
                await asyncio.sleep(0.01)

        tasks = [asyncio.ensure_future(sequencer(db, replay)) for db, replay in zip(dbs, (True, True, False),
                                                                                     strict=True)]
        reading = asyncio.ensure_future(reader())
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        writing_done.set()
        await asyncio.gather(*tasks)
        while await sequence(dbs[0]):  # what the last passes left
            pass
        all_numbered.set()
        await reading
        total = WRITERS * WRITES_EACH
        counts = await dbs[2].fetch_one("SELECT COUNT(*), COUNT(seq), COUNT(DISTINCT seq) FROM sync_changes"
                                        " WHERE pet_id = %s", (MARK,))
        print(f"\nsequencer on 3 nodes: {total} rows from writers on nodes 1 and 2, passes {dict(outcome)}; the reader"
              f" through node 3 saw seq {start + 1}..{seen[-1] if seen else start} with no gap")
        assert counts == (total, total, total)
        assert seen == list(range(start + 1, start + total + 1))
    finally:
        for db in dbs:
            await db.close()
