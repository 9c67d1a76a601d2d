"""Versioned SQL migrations: applied by `migrate`, recorded in schema_migrations, checked at start."""

import asyncio
import itertools

import pytest

from server import make_app
from server.app import PendingMigrations
from server.db import connect
from server.db.migrations import MIGRATIONS_DIR, applied_versions, available, migrate, pending
from tests.conftest import test_config as profile_config
from tests.mariadb_server import create_database

TABLES = {"users", "token_revocations", "login_failures", "pets", "records", "idempotency_keys", "schema_migrations"}
_names = itertools.count(1)


@pytest.fixture(params=["mysql", "sqlite"])
def empty_url(request, tmp_path):
    """The URL of an empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/empty.sqlite3"
    server = request.getfixturevalue("mysql_server_url")
    return create_database(server, f"pet_api_migrations_{next(_names)}")


async def _tables(db) -> set[str]:
    return {r[0] for r in await db.fetch_all(db.dialect.tables)}


def test_each_dialect_has_the_same_versions():
    mysql, sqlite = available("mysql"), available("sqlite")
    assert [(m.version, m.name) for m in mysql] == [(m.version, m.name) for m in sqlite]
    assert mysql[0].version == 1
    assert [m.version for m in mysql] == list(range(1, len(mysql) + 1))  # no gaps, no duplicates
    assert all(m.statements() for m in mysql + sqlite)
    assert sorted(p.name for p in (MIGRATIONS_DIR / "mysql").iterdir()) == [m.path.name for m in mysql]


@pytest.mark.gen_test(timeout=30)
async def test_migrate_applies_everything_once_and_records_it(empty_url):
    db = await connect(profile_config(database_url=empty_url))
    try:
        assert [m.version for m in await pending(db)] == [m.version for m in available(db.dialect.name)]
        assert await _tables(db) == set()  # looking at what is pending creates nothing
        applied = await migrate(db)
        assert [m.version for m in applied] == [m.version for m in available(db.dialect.name)]
        assert await _tables(db) == TABLES
        assert await applied_versions(db) == {m.version for m in applied}
        rows = await db.fetch_all("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [tuple(r) for r in rows] == [(m.version, m.name) for m in applied]
        assert await migrate(db) == []
        assert await pending(db) == []
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_pending_migration_stops_the_start_unless_auto_migrate(empty_url):
    config = profile_config(database_url=empty_url)
    db = await connect(config)
    try:
        await migrate(db)
        await db.execute("DELETE FROM schema_migrations WHERE version = 1")
    finally:
        await db.close()

    app = make_app(config)
    with pytest.raises(PendingMigrations) as caught:
        await app.startup()
    await app.shutdown()
    message = str(caught.value)
    assert "pending migrations 0001_initial" in message
    assert "python main.py migrate --env=test" in message

    db = await connect(config)
    try:
        await db.execute("DELETE FROM schema_migrations")
        for table in ("records", "pets", "token_revocations", "login_failures", "users", "idempotency_keys"):
            await db.execute(f"DROP TABLE {table}")
    finally:
        await db.close()
    dev_like = make_app(profile_config(database_url=empty_url, auto_migrate=True))
    await dev_like.startup()  # dev applies them itself
    try:
        assert await pending(dev_like.db) == []
        assert await _tables(dev_like.db) == TABLES
    finally:
        await dev_like.shutdown()


@pytest.mark.parametrize("empty_url", ["mysql"], indirect=True)  # SQLite: one embedded connection, no race
@pytest.mark.gen_test(timeout=30)
async def test_two_migrators_at_once_leave_one_consistent_schema(empty_url):
    config = profile_config(database_url=empty_url)
    first, second = await connect(config), await connect(config)
    try:
        results = await asyncio.gather(migrate(first), migrate(second), return_exceptions=True)
        assert sorted(len(r) for r in results) == [0, len(available("mysql"))], results  # one waited, then had none
        assert await pending(first) == []
        assert await _tables(first) == TABLES
    finally:
        await first.close()
        await second.close()
