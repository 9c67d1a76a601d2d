"""sync 0003_sequencer on a log written the old way (seq from the counter, in the writer): every row keeps its seq, in
order, and rows logged afterwards are numbered after them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server.changes import Change
from server.db import connect
from server.db.migrations import migrate
from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import log_head, record_change
from server.registry import load_plugins
from server.services import utcnow
from tests.conftest import test_config as profile_config
from tests.db.test_migrations import empty_url  # noqa: F401 - the fixture: an empty database on each backend

PLUGINS = "core,accounts,pets,sync"


def _before_sequencer(url: str, tmp_path: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """The migration sources without sync 0003 (a copy of 0001 and 0002), and the real ones."""
    real = load_plugins(profile_config(database_url=url, plugins=PLUGINS)).migration_sources()
    folder = dict(real)["sync"]
    old = tmp_path / "sync_before"
    for dialect in ("mysql", "sqlite"):
        (old / dialect).mkdir(parents=True)
        for path in sorted((folder / dialect).glob("000[12]_*.sql")):
            shutil.copy(path, old / dialect / path.name)
    return [(p, old if p == "sync" else f) for p, f in real], real


@pytest.mark.gen_test(timeout=60)
async def test_the_sequencer_migration_keeps_every_seq_and_numbers_new_rows_after_them(empty_url, tmp_path):  # noqa: F811
    before, real = _before_sequencer(empty_url, tmp_path)
    db = await connect(profile_config(database_url=empty_url))
    try:
        await migrate(db, before)
        for seq in (3, 1, 2):  # inserted out of order: the ids must still follow seq
            await db.execute("INSERT INTO sync_changes (seq, type, object_id, pet_id, user_id, action, created_at)"
                             " VALUES (%s, 'pet', %s, %s, NULL, 'updated', %s)", (seq, 10 + seq, 10 + seq, utcnow()))
        await db.execute("UPDATE sync_counter SET value = 3 WHERE name = 'seq'")
        assert [(m.plugin, m.version, m.name) for m in await migrate(db, real)] == [("sync", 3, "sequencer")]
        rows = await db.fetch_all("SELECT id, seq, object_id FROM sync_changes ORDER BY id")
        assert [(r[1], r[2]) for r in rows] == [(1, 11), (2, 12), (3, 13)]

        async with db.transaction() as tx:
            assert await record_change(tx, Change("pet", "updated", 99, None, pet_id=99)) is True
            assert await record_change(tx, Change("account", "credentials_changed", 5, None)) is False
        assert await db.fetch_one("SELECT seq FROM sync_changes WHERE object_id = 99") == (None,)
        assert await sequence(db) == 1
        assert await db.fetch_one("SELECT seq FROM sync_changes WHERE object_id = 99") == (4,)
        assert await log_head(db) == 4
        assert await sequence(db) == 0
    finally:
        await db.close()
