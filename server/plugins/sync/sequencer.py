"""The change log's sequencer (issue 15): writers only insert their log rows (an auto-increment id, seq NULL); a
sequencer pass numbers the committed, unnumbered rows densely in id order, in its own short transaction.

Why nothing is skipped or reordered for a reader: a pass locks the 'seq' counter row first, then reads the unnumbered
rows with a non-locking read (InnoDB takes the snapshot at that read, after the lock: a pass sees what every earlier
pass numbered), numbers them head+1, head+2, ... and moves the counter, all in one commit. A row of a transaction
still open is invisible to the pass; it is numbered by a later pass, above everything numbered before. So seq only
grows, with no gap, and no row ever appears below a number a reader has seen (readers read numbered rows only).
Concurrent passes (workers, instances) wait on the counter row's lock; on Galera the loser's commit fails
certification and run_transaction replays it.

Who may read a pet's changes (sync_access spans in seq) is applied here too, since only here is a change's seq
known: a creation or a share opens the user's span at its seq (generously: a span is never needed less than the
log says); at the end of the pass every span of a touched pet whose user is not a member in the pass's snapshot
closes at the pet's last access change of the pass. The snapshot decides, not the order of the rows: across Galera
nodes auto-increment ids need not follow commit order, even for a share and a removal of the same member."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from server import periodic
from server.db import Executor, TransactionConflict, column, nullable

log = logging.getLogger("pet_api.sync")
BATCH = 1000  # rows numbered per pass at most (a longer backlog takes further passes)
NUDGE_DELAY = 0.02  # seconds: the commits of this worker within it share one pass
STOP_WAIT = 2.0  # seconds a stopping worker gives the passes already nudged
REVOKING = frozenset({"removed", "left"})  # member actions that end the member's access
# The unnumbered rows, through the index on seq whatever MariaDB estimates: numbering a row leaves its old (NULL)
# entry in that index until InnoDB's purge removes it, which waits for every older read view (any open transaction,
# a dump's snapshot). Counting those entries, the optimizer took the primary key in id order instead and read the
# whole log on every pass (tests/plugins/sync/test_sequencer_cost.py).
UNNUMBERED = ("SELECT id, type, object_id, pet_id, user_id, action FROM sync_changes{index} WHERE seq IS NULL"
              " ORDER BY id LIMIT %s")


@dataclass(frozen=True, slots=True)
class Entry:
    """An unnumbered log row, with the seq this pass gives it."""

    seq: int
    type: str
    object_id: int
    pet_id: int | None
    user_id: int | None
    action: str

    @property
    def changes_access(self) -> bool:
        return self.pet_id is not None and (self.type == "member"
                                            or self.type == "pet" and self.action in ("created", "deleted"))

    @property
    def grants(self) -> bool:
        return self.user_id is not None and (self.type == "member" and self.action not in REVOKING
                                             or self.type == "pet" and self.action == "created")


async def sequence(db: Executor, *, replay: bool = True) -> int:
    """Number every committed, unnumbered log row; returns how many. A pass that conflicts (after run_transaction's
    attempts; at once with replay=False, for a reader that should not wait) leaves its rows to the next pass: the
    pass it lost to committed, and numbered what it saw."""
    if await db.fetch_one("SELECT id FROM sync_changes WHERE seq IS NULL LIMIT 1") is None:
        return 0  # nothing to number: no lock taken (GET /v1/sync and every hub round pass here)
    total = 0
    while True:
        try:
            if replay:
                numbered = await db.run_transaction(_pass)
            else:
                async with db.transaction() as tx:
                    numbered = await _pass(tx)
        except TransactionConflict:
            if replay:
                log.warning("sequencer pass still conflicting; the next pass numbers its rows")
            return total
        total += numbered
        if numbered < BATCH:
            return total


async def _pass(tx: Executor) -> int:
    counter = await tx.fetch_one(
        "SELECT value FROM sync_counter WHERE name = 'seq'" + tx.dialect.for_update)  # noqa: S608 - the dialect's
    head = column(counter[0], int) if counter else 0
    rows = await tx.fetch_all(UNNUMBERED.format(index=tx.dialect.through_index("ix_sync_changes_seq")), (BATCH,))
    if not rows:
        return 0
    ids = [column(r[0], int) for r in rows]
    cases = " ".join(["WHEN %s THEN %s"] * len(ids))
    marks = ", ".join(["%s"] * len(ids))
    numbered = await tx.execute(
        f"UPDATE sync_changes SET seq = CASE id {cases} END WHERE id IN ({marks}) AND seq IS NULL",  # noqa: S608
        (*(v for i, row_id in enumerate(ids) for v in (row_id, head + 1 + i)), *ids))
    if numbered.rowcount != len(ids):  # a pass this one should have waited for numbered some: undo, run again
        raise TransactionConflict("sync sequencer raced another pass")
    await tx.execute_later("UPDATE sync_counter SET value = %s WHERE name = 'seq'", (head + len(ids),))
    entries = [Entry(head + 1 + i, str(r[1]), column(r[2], int), nullable(r[3], int), nullable(r[4], int), str(r[5]))
               for i, r in enumerate(rows)]
    await _apply_access(tx, entries)
    return len(ids)


async def _apply_access(tx: Executor, entries: list[Entry]) -> None:
    """Open and close the sync_access spans the numbered entries imply (see the module's docstring)."""
    gone = {e.object_id for e in entries if e.type == "account" and e.action == "deleted"}
    if gone:  # an account deleted: a share committed before it must not leave a span behind
        await tx.execute_later(f"DELETE FROM sync_access WHERE user_id IN ({', '.join(['%s'] * len(gone))})",  # noqa: S608
                               tuple(gone))
    last = {e.pet_id: e.seq for e in entries if e.changes_access and e.pet_id is not None}
    if not last:
        return
    pets = tuple(sorted(last))
    marks = ", ".join(["%s"] * len(pets))
    spans = {(column(p, int), column(u, int)): column(g, int) for p, u, g in await tx.fetch_all(
        f"SELECT pet_id, user_id, granted_seq FROM sync_access WHERE pet_id IN ({marks})"  # noqa: S608
        " AND revoked_seq IS NULL", pets)}
    members = {(column(p, int), column(u, int)) for p, u in await tx.fetch_all(
        f"SELECT pet_id, user_id FROM pet_members WHERE pet_id IN ({marks})", pets)}  # noqa: S608
    opened: dict[tuple[int, int], int] = {}
    for e in entries:
        if e.grants and e.pet_id is not None and e.user_id is not None and e.user_id not in gone:
            key = (e.pet_id, e.user_id)
            if key not in spans and key not in opened:
                opened[key] = e.seq
    if opened:
        await tx.execute_later(
            "INSERT INTO sync_access (pet_id, user_id, granted_seq, revoked_seq) VALUES "  # noqa: S608 - placeholders
            + ", ".join(["(%s, %s, %s, %s)"] * len(opened)),
            tuple(v for (p, u), g in opened.items() for v in (p, u, g, None if (p, u) in members else last[p])))
    for (pet_id, user_id), granted in spans.items():
        if (pet_id, user_id) not in members:
            await tx.execute_later("UPDATE sync_access SET revoked_seq = %s WHERE pet_id = %s AND user_id = %s"
                                   " AND granted_seq = %s", (last[pet_id], pet_id, user_id, granted))


class Sequencer:
    """Runs a pass soon after a local commit that wrote log rows (nudge()); the nudges of NUDGE_DELAY share it."""

    def __init__(self) -> None:
        self.db: Executor | None = None
        self.passes = 0
        self._due = False
        self._task: asyncio.Task[None] | None = None

    def start(self, db: Executor) -> None:
        self.db = db

    async def stop(self) -> None:
        """No pass after those already nudged, which run now, for STOP_WAIT at most: this process's commits get their
        seq before it exits (a pass that fails or is cut leaves its rows to the next one, here or elsewhere)."""
        self.db = None
        task = self._task
        if task is not None and not (await asyncio.wait({task}, timeout=STOP_WAIT))[0]:
            task.cancel()  # the database is away, or its one connection (SQLite) held by a request that hangs
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Until the passes nudged so far have run."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def nudge(self) -> None:
        """A commit wrote log rows: number them within NUDGE_DELAY (after the pass running now, if any)."""
        if self.db is None:  # not started (a CLI command) or stopping: the next pass anywhere numbers them
            return
        self._due = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(self.db))

    async def _run(self, db: Executor) -> None:
        while self._due:
            await asyncio.sleep(NUDGE_DELAY)
            self._due = False
            self.passes += 1
            try:
                await sequence(db)
            except Exception as exc:  # the database away: the hub's next round, a sync or the purge numbers them
                periodic.warn_failed(log, "sync sequencer pass")(exc)
