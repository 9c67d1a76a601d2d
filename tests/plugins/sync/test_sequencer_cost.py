"""What the change log costs a writer: one INSERT in its transaction, no counter row (the sequencer numbers the row
after the commit, off the request's path). Prints the statements of one POST /v1/pets and of the pass after it."""

from __future__ import annotations

from contextlib import closing

import pytest

from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import log_head
from server.services import utcnow
from tests.factories import both_backends, create_pet, record_round_trips, record_statements, user_with_token
from tests.mariadb_server import connect_server, older_read_view, rows_read


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_creating_a_pet_logs_one_row_and_touches_no_counter_until_the_sequencer_runs(api, app):
    await app.sync_sequencer.stop()  # the pass after the commit is counted apart
    _, token = await user_with_token(app)
    await create_pet(api, token, name="Warm-up")  # first-use statements (caches) out of the count
    assert await sequence(app.db) == 1
    issued = record_statements(app)
    pet = await create_pet(api, token)
    request = list(issued)
    issued.clear()
    trips = record_round_trips(app)
    assert await sequence(app.db) == 1
    sequencing = list(issued)
    print(f"\ncreate_pet on {app.db.dialect.name}: {len(request)} statements in the request "
          f"({sum('sync_' in s for s in request)} on the change log); the sequencer's pass after it: {len(sequencing)}"
          f" in {len(trips)} round trips")
    # The counter's and the access spans' writes go out with the statements after them.
    batched = [trip[0].split(" (")[0] for trip in trips if len(trip) > 1]
    assert batched == [app.db.dialect.begin, "UPDATE sync_counter SET value = %s WHERE name = 'seq'",
                       "INSERT INTO sync_access"], trips
    assert trips[-1][-1] == "COMMIT" and sum(trips, []) == sequencing, trips
    logged = [s for s in request if "sync_" in s]
    assert logged == ["INSERT INTO sync_changes (type, object_id, pet_id, user_id, action, created_at)"
                      " VALUES (%s, %s, %s, %s, %s, %s)"]
    assert any(s.startswith("INSERT INTO sync_access") for s in sequencing)  # the owner's span, opened by the pass
    row = await app.db.fetch_one("SELECT seq FROM sync_changes WHERE object_id = %s AND type = 'pet'", (pet["id"],))
    assert row is not None and row[0] is not None


@pytest.mark.gen_test(timeout=60)
async def test_a_pass_reads_the_unnumbered_rows_only_while_purge_is_held_back(app, config):
    """Numbered rows leave their old entries in the seq index until purge, which waits for the oldest read view (a
    long transaction, a dump's snapshot): the pass still reads only the rows it numbers, not the whole log."""
    await app.sync_sequencer.stop()  # the passes run here, one at a time
    logged = ("INSERT INTO sync_changes (type, object_id, user_id, action, created_at)"
              " SELECT 'record', seq, NULL, 'created', %s FROM seq_1_to_{}")
    head = await log_head(app.db)
    await app.db.execute(logged.format(3000), (utcnow(),))
    # the snapshot's read view makes purge keep every entry the passes below replace
    with closing(connect_server(config.database_url)) as probe, older_read_view(config.database_url) as snapshot:
        snapshot.execute("SELECT COUNT(*) FROM sync_changes")
        assert snapshot.fetchone() == (3000,)
        assert await sequence(app.db) == 3000
        await app.db.execute(logged.format(10), (utcnow(),))
        before = rows_read(probe)
        assert await sequence(app.db) == 10
        read = rows_read(probe) - before
    row = await app.db.fetch_one("SELECT COUNT(*), MIN(seq), MAX(seq) FROM sync_changes WHERE seq IS NOT NULL")
    assert row is not None and tuple(row) == (3010, head + 1, head + 3010), (row, head)
    assert read < 300, f"the pass read {read} rows to number 10 of 3,010"
