"""The transaction runner's after_commit hook: callbacks run once the transaction committed, never for one rolled
back or for an attempt that run_transaction replays."""

from __future__ import annotations

from typing import Any

import pytest

from server.db import IntegrityViolation, TransactionConflict
from server.db.runner import one_row
from tests.factories import both_backends, record_round_trips, trigger


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_after_commit_runs_after_the_commit_once_and_never_after_a_rollback(app):
    calls: list[tuple[str, Any]] = []

    def seen() -> None:
        calls.append(("called", None))

    async with app.db.transaction() as tx:
        await tx.execute("INSERT INTO token_revocations (jti, expires_at_ms) VALUES ('after-commit', 1)")
        tx.after_commit(seen)
        tx.after_commit(seen)  # registered twice: runs once
        async with tx.transaction() as inner:  # a nested block joins: its callback waits for the outer commit
            inner.after_commit(lambda: calls.append(("inner", None)))
        assert calls == []
    assert calls == [("called", None), ("inner", None)]
    assert await app.db.fetch_one("SELECT jti FROM token_revocations WHERE jti = 'after-commit'") == ("after-commit",)

    calls.clear()
    with pytest.raises(RuntimeError):
        async with app.db.transaction() as tx:
            tx.after_commit(seen)
            raise RuntimeError("rolled back")
    assert calls == []

    attempts: list[int] = []

    async def body(tx: Any) -> None:
        attempts.append(1)
        tx.after_commit(lambda n=len(attempts): calls.append(("attempt", n)))
        if len(attempts) == 1:
            raise TransactionConflict()

    await app.db.run_transaction(body)
    assert calls == [("attempt", 2)]  # the replayed attempt's only

    calls.clear()
    app.db.after_commit(seen)  # no transaction: every statement has committed, it runs at once
    assert calls == [("called", None)]


# ---- a transaction's batches: its BEGIN and the writes nobody reads go out with its next statement or its COMMIT
TAKEN = "INSERT INTO login_failures (k, window_start_ms, failures) VALUES (%s, 0, 1)"


async def failures_keys(app: Any) -> list[str]:
    rows = await app.db.fetch_all("SELECT k FROM login_failures WHERE k LIKE 'batch-%' ORDER BY k")
    return [str(row[0]) for row in rows]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_deferred_write_that_breaks_a_key_fails_the_commit_and_nothing_of_the_transaction_stays(app):
    await app.db.execute(TAKEN, ("batch-taken",))
    trips = record_round_trips(app)
    with pytest.raises(IntegrityViolation):
        async with app.db.transaction() as tx:
            await tx.execute(TAKEN, ("batch-a",))  # sent with the BEGIN
            await tx.execute_later(TAKEN, ("batch-b",))
            await tx.execute_later(TAKEN, ("batch-taken",))  # the key is taken: the COMMIT never runs
            await tx.execute_later(TAKEN, ("batch-c",))
    assert [len(trip) for trip in trips] == [2, 4, 1] and trips[-1] == ["ROLLBACK"], trips
    assert await failures_keys(app) == ["batch-taken"]

    trips.clear()
    with pytest.raises(IntegrityViolation):  # surfaced at the next statement that answers something
        async with app.db.transaction() as tx:
            await tx.execute_later(TAKEN, ("batch-d",))
            await tx.execute_later(TAKEN, ("batch-taken",))
            await tx.fetch_one("SELECT COUNT(*) FROM login_failures")
            raise AssertionError("the read answered after a write failed")
    assert [trip[0] for trip in trips] == [app.db.dialect.begin, "ROLLBACK"], trips
    assert await failures_keys(app) == ["batch-taken"]
    # The connection that failed mid-batch serves the next transaction (no result left unread on it).
    async with app.db.transaction() as tx:
        await tx.execute_later(TAKEN, ("batch-e",))
        assert await tx.fetch_one("SELECT COUNT(*) FROM login_failures WHERE k = 'batch-e'") == (1,)
    assert await failures_keys(app) == ["batch-e", "batch-taken"]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_transaction_sends_its_begin_with_its_first_statement_and_nothing_when_it_sent_nothing(app):
    trips = record_round_trips(app)
    async with app.db.transaction():
        pass
    with pytest.raises(RuntimeError):
        async with app.db.transaction() as tx:
            await tx.execute_later(TAKEN, ("batch-never",))
            raise RuntimeError("before anything went out")
    assert trips == []
    assert await failures_keys(app) == []

    trips.clear()
    async with app.db.transaction() as tx:  # only writes nobody reads: one round trip
        await tx.execute_later(TAKEN, ("batch-only",))
    assert trips == [[app.db.dialect.begin, TAKEN, "COMMIT"]]
    assert await app.db.execute_later("DELETE FROM login_failures WHERE k = %s", ("batch-only",)) is None
    assert await failures_keys(app) == []  # outside a transaction it ran at once

    trips.clear()
    with pytest.raises(RuntimeError):
        async with app.db.transaction() as tx:
            assert await tx.fetch_one("SELECT COUNT(*) FROM login_failures WHERE k LIKE 'batch-%'") == (0,)
            await tx.execute_later(TAKEN, ("batch-dropped",))
            raise RuntimeError("after a read")
    assert trips == [[app.db.dialect.begin, "SELECT COUNT(*) FROM login_failures WHERE k LIKE 'batch-%'"],
                     ["ROLLBACK"]]
    assert await failures_keys(app) == []


@pytest.mark.gen_test(timeout=30)
async def test_a_conflict_in_the_commits_round_trip_replays_the_whole_body(app):
    # MariaDB reports 1213 (deadlock, certification failure) mostly at the statement that commits; a trigger raises
    # it for the first attempt's deferred write, which goes out with the COMMIT.
    attempts: list[int] = []

    async def body(tx: Any) -> int:
        attempts.append(len(attempts) + 1)
        await tx.execute(TAKEN, (f"batch-{len(attempts)}-first",))
        await tx.execute_later(TAKEN, (f"batch-{len(attempts)}-later",))
        return len(attempts)

    async with trigger(app, "CREATE TRIGGER batch_conflict BEFORE INSERT ON login_failures FOR EACH ROW"
                            " IF NEW.k = 'batch-1-later' THEN SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213,"
                            " MESSAGE_TEXT = 'Deadlock found when trying to get lock'; END IF"):
        trips = record_round_trips(app)
        assert await app.db.run_transaction(body) == 2
        trips = list(trips)  # without the trigger's drop
    assert attempts == [1, 2]
    assert [trip[-1] for trip in trips] == [TAKEN, "COMMIT", "ROLLBACK", TAKEN, "COMMIT"], trips
    assert await failures_keys(app) == ["batch-2-first", "batch-2-later"]


@both_backends
@pytest.mark.parametrize("failing", [0, 1, 2])
@pytest.mark.gen_test(timeout=30)
async def test_a_batch_stops_at_its_first_error_and_leaves_nothing_unread(app, failing):
    driver = app.db.driver
    await app.db.execute(TAKEN, ("batch-taken",))
    batch = [(TAKEN, ("batch-x",)), (TAKEN, ("batch-y",)), ("SELECT COUNT(*) FROM login_failures", ())]
    batch[failing] = (TAKEN, ("batch-taken",))
    conn = await driver.acquire()
    try:
        with pytest.raises(driver.integrity_error):
            await driver.run(conn, batch, one_row)
        assert driver.open(conn)
        assert await driver.run(conn, [("SELECT 1", ()), ("SELECT 2", ())], one_row) == (2,)
    finally:
        driver.release(conn)
    assert await failures_keys(app) == ["batch-taken", "batch-x", "batch-y"][:1 + failing]
