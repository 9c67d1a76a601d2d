"""What the change log costs a writer: one INSERT in its transaction, no counter row (the sequencer numbers the row
after the commit, off the request's path). Prints the statements of one POST /v1/pets and of the pass after it."""

from __future__ import annotations

import pytest

from server.plugins.sync.sequencer import sequence
from tests.factories import both_backends, create_pet, record_round_trips, record_statements, user_with_token


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
