"""The transaction runner's after_commit hook: callbacks run once the transaction committed, never for one rolled
back or for an attempt that run_transaction replays."""

from __future__ import annotations

from typing import Any

import pytest

from server.db import TransactionConflict
from tests.factories import both_backends


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
