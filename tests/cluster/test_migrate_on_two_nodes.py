"""Two `migrate` runs started at once through two Galera nodes apply each migration once (the migration lock is
a replicated row; GET_LOCK is held by one node only)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.galera import GaleraCluster
from tests.processes import ROOT, clean_env

pytestmark = pytest.mark.cluster


def test_two_migrate_runs_through_two_nodes_apply_each_migration_once(galera: GaleraCluster) -> None:
    database = "pet_api_migrate_race"
    galera.create_database(database)
    runs = [subprocess.Popen([sys.executable, "main.py", "migrate", "--env=test"], cwd=ROOT, text=True,
                             env=clean_env(PET_API_DATABASE_URL=galera.url(node, database)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for node in (1, 2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    printed = sorted((out.splitlines() for out, _ in outputs), key=len)
    assert printed[0] == ["database is up to date"]  # the second waited for the lock, then found nothing to do
    assert printed[1][0] == "applied core 0001_initial" and len(printed[1]) >= 4, printed
    for node in (1, 2, 3):
        ledger = f"`{database}`.schema_migrations"
        rows = galera.query(node, f"SELECT plugin, version, COUNT(*) FROM {ledger} GROUP BY plugin, version",  # noqa: S608
                            causal=True)
        assert len(rows) == len(printed[1]) and all(row[2] == 1 for row in rows), rows
        lock = f"`{database}`.schema_migration_lock"
        assert galera.query(node, f"SELECT COUNT(*) FROM {lock}", causal=True) == [(0,)]  # noqa: S608 - test names
