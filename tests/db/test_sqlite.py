"""The embedded SQLite database behind the same interface: %s placeholders, dates, transactions, one writer."""

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from server.db import Database, IntegrityViolation, connect
from server.db.sqlite import SQLiteDriver
from tests.conftest import test_config as profile_config
from tests.processes import ROOT


async def _open(path: Path) -> Database:
    db = await connect(profile_config(database_url=f"sqlite:///{path}"))
    assert isinstance(db.driver, SQLiteDriver)
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, at TEXT, day TEXT)")
    return db


@pytest.mark.gen_test
async def test_statements_use_the_same_placeholders_and_types(tmp_path):
    db = await _open(tmp_path / "nested" / "dir" / "db.sqlite3")  # missing directories are made
    try:
        hostile = "x'); DROP TABLE t; --"
        at = dt.datetime(2024, 2, 29, 12, 30, 1, 5)
        result = await db.execute("INSERT INTO t (v, at, day) VALUES (%s, %s, %s)", (hostile, at, dt.date(2024, 3, 1)))
        assert (result.rowcount, result.lastrowid) == (1, 1)
        assert await db.fetch_one("SELECT v, at, day FROM t WHERE id = %s", (1,)) == (
            hostile, "2024-02-29 12:30:01.000005", "2024-03-01")
        assert await db.fetch_all("SELECT v FROM t WHERE v = %s", ("nothing",)) == []
        with pytest.raises(IntegrityViolation):
            await db.execute("INSERT INTO t (v) VALUES (%s)", (hostile,))
        assert await db.fetch_one("PRAGMA foreign_keys") == (1,)
        assert await db.fetch_one("PRAGMA journal_mode") == ("wal",)
    finally:
        await db.close()


@pytest.mark.gen_test
async def test_a_transaction_commits_or_rolls_back_as_a_whole(tmp_path):
    db = await _open(tmp_path / "db.sqlite3")
    try:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t (v) VALUES (%s)", ("kept",))
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t (v) VALUES (%s)", ("dropped",))
                raise RuntimeError("abort")
        with pytest.raises(IntegrityViolation):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t (v) VALUES (%s)", ("also dropped",))
                await tx.execute("INSERT INTO t (v) VALUES (%s)", ("kept",))
        assert await db.fetch_all("SELECT v FROM t ORDER BY id") == [("kept",)]
        assert db.pool_stats() == (0, 1)
    finally:
        await db.close()


@pytest.mark.gen_test
async def test_statements_of_other_coroutines_wait_outside_a_transaction(tmp_path):
    db = await _open(tmp_path / "db.sqlite3")
    try:
        async def inside() -> None:
            with pytest.raises(RuntimeError):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO t (v) VALUES (%s)", ("rolled back",))
                    await asyncio.sleep(0.05)  # another coroutine's statement arrives meanwhile
                    raise RuntimeError("abort")

        async def outside() -> None:
            await asyncio.sleep(0.01)
            await db.execute("INSERT INTO t (v) VALUES (%s)", ("separate",))

        await asyncio.gather(inside(), outside())
        # had the second insert joined the open transaction, the rollback would have taken it too
        assert await db.fetch_all("SELECT v FROM t") == [("separate",)]
    finally:
        await db.close()


@pytest.mark.gen_test
async def test_the_dev_profile_default_is_an_embedded_file():
    from server.config import load_config
    from server.db import parse_url

    config = load_config("dev", environ={})
    assert parse_url(config.database_url).scheme == "sqlite"
    assert config.auto_migrate is True


@pytest.mark.gen_test
async def test_a_transaction_opened_inside_another_joins_it(tmp_path):
    db = await _open(tmp_path / "db.sqlite3")
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as outer:
                async with outer.transaction() as inner:
                    assert inner is outer
                    await inner.execute("INSERT INTO t (v) VALUES (%s)", ("inner",))
                raise RuntimeError("abort")  # the inner block's write goes with the outer one
        assert await db.fetch_all("SELECT v FROM t") == []
    finally:
        await db.close()


@pytest.mark.gen_test
async def test_sleep_waits_as_on_mariadb(tmp_path):
    db = await _open(tmp_path / "db.sqlite3")
    try:
        start = asyncio.get_running_loop().time()
        assert await db.fetch_one("SELECT SLEEP(%s), %s", (0.1, "x")) == (0, "x")
        assert asyncio.get_running_loop().time() - start >= 0.1
    finally:
        await db.close()


def _files(path: Path) -> list[Path]:
    """The database file and SQLite's companions."""
    return [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]


@pytest.mark.gen_test
async def test_a_relative_path_is_the_projects_file_whatever_the_current_directory(tmp_path, monkeypatch):
    name = f"var/test-relative-{tmp_path.name}.sqlite3"
    project_file, *companions = _files(ROOT / name)
    monkeypatch.chdir(tmp_path)  # as `cd /; python /srv/pet-api/main.py` or a unit file's WorkingDirectory
    try:
        db = await connect(profile_config(database_url=f"sqlite:///{name}"))
        await db.execute("CREATE TABLE here (id INTEGER PRIMARY KEY)")
        await db.close()
        assert project_file.is_file()
        assert not (tmp_path / name).exists()
    finally:
        for path in (project_file, *companions):
            path.unlink(missing_ok=True)
