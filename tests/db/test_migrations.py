"""Versioned SQL migrations of the core and of each plugin: applied by `migrate`, recorded per plugin, checked at
start; the upgrade from the ledger of pet-api before plugins; the migration lock."""

import asyncio
import datetime as dt
import itertools
import logging
from pathlib import Path

import pytest

from server import make_app
from server.app import PendingMigrations
from server.db import connect
from server.db.migrations import (
    CORE_SOURCE,
    MIGRATIONS_DIR,
    MigrationFolderError,
    MigrationLockTimeout,
    applied,
    applied_versions,
    available,
    check_folder,
    migrate,
    migration_lock,
    pending,
)
from server.plugins import built_in_names, find_plugin
from server.plugins.records.services import get_record
from server.registry import load_plugins
from tests.conftest import test_config as profile_config
from tests.mariadb_server import create_database

CORE_TABLES = {"users", "token_revocations", "login_failures", "idempotency_keys"}
ACCOUNTS_TABLES = {"sessions", "refresh_tokens", "outbox", "account_tokens",  # the accounts plugin's
                   "mfa_factors", "mfa_recovery_codes"}
TABLES = CORE_TABLES | ACCOUNTS_TABLES | {"pets", "pet_members", "records", "invitations", "pet_history",
                                          "calendar_feeds", "schema_migrations", "schema_migration_lock"}
NOTES = "tests.db.notes_plugin"
BEFORE_PLUGINS = Path(__file__).parent / "fixtures" / "before_plugins"
# The ledger as pet-api before plugins created it (server/db/dialect.py at fa0cd00): one row per version.
OLD_LEDGER = {
    "mysql": "CREATE TABLE schema_migrations (version INT PRIMARY KEY, name VARCHAR(128) NOT NULL,"
             " applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "sqlite": "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
              " applied_at TEXT NOT NULL)",
}
_names = itertools.count(1)


@pytest.fixture(params=["mysql", "sqlite"])
def empty_url(request, tmp_path):
    """The URL of an empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/empty.sqlite3"
    server = request.getfixturevalue("mysql_server_url")
    return create_database(server, f"pet_api_migrations_{next(_names)}")


SOURCE_PLUGINS = "core,accounts,pets,records,households,reminders,metrics"  # the plugins sources() migrates


def sources(url: str, plugins: str = SOURCE_PLUGINS):
    return load_plugins(profile_config(database_url=url, plugins=plugins)).migration_sources()


async def _tables(db) -> set[str]:
    return {r[0] for r in await db.fetch_all(db.dialect.tables)}


@pytest.mark.parametrize("plugin", ["core", *[n for n in built_in_names() if find_plugin(n).migrations]])
def test_each_dialect_has_the_same_versions(plugin):
    folder = MIGRATIONS_DIR if plugin == "core" else find_plugin(plugin).migrations
    mysql, sqlite = available("mysql", folder, plugin), available("sqlite", folder, plugin)
    assert [(m.version, m.name) for m in mysql] == [(m.version, m.name) for m in sqlite]
    assert mysql[0].version == 1
    assert [m.version for m in mysql] == list(range(1, len(mysql) + 1))  # no gaps, no duplicates
    assert all(m.statements() for m in mysql + sqlite)
    assert sorted(p.name for p in (folder / "mysql").iterdir()) == [m.path.name for m in mysql]
    check_folder(folder)  # the start refuses a plugin whose folder does not pass


@pytest.mark.parametrize(("files", "says"), [
    ({"sqlite/0002_AddNote.sql": "", "mysql/0002_AddNote.sql": ""},
     "mysql/0002_AddNote.sql is not named NNNN_name.sql (four digits, an underscore, then lower-case letters, digits "
     "and underscores)"),
    ({"sqlite/0002-add-note.sql": ""}, "sqlite/0002-add-note.sql is not named NNNN_name.sql"),
    ({"sqlite/0002_note.SQL": ""}, "sqlite/0002_note.SQL is not named NNNN_name.sql"),
    ({"sqlite/0002_note.sql~": ""}, "sqlite/0002_note.sql~ is not named NNNN_name.sql"),
    ({"sqlite/0002_note.sql": ""}, "sqlite/0002_note.sql has no mysql/ counterpart (version 0002)"),
    ({"mysql/0002_note.sql": ""}, "mysql/0002_note.sql has no sqlite/ counterpart (version 0002)"),
    ({"mysql/0001_again.sql": "", "sqlite/0001_again.sql": ""},
     "mysql/0001_base.sql has the version of 0001_again.sql"),
])
def test_a_migrations_folder_with_a_file_migrate_would_skip_is_refused(tmp_path, files, says):
    for path, text in {"mysql/0001_base.sql": "", "sqlite/0001_base.sql": "", **files}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    with pytest.raises(MigrationFolderError) as caught:
        check_folder(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}/{says}")


def test_a_migrations_folder_may_hold_dot_files_and_lack_both_dialects(tmp_path):
    check_folder(tmp_path)  # a plugin's migrations= naming a folder without mysql/ and sqlite/: nothing to apply
    for dialect in ("mysql", "sqlite"):
        (tmp_path / dialect).mkdir()
        (tmp_path / dialect / "0001_base.sql").write_text("")
        (tmp_path / dialect / ".0001_base.sql.swp").write_text("")
    check_folder(tmp_path)


def test_pets_and_records_own_their_tables_in_dependency_order(tmp_path):
    order = [plugin for plugin, _ in sources(f"sqlite:///{tmp_path}/x.sqlite3", "records,core,pets,accounts")]
    assert order == ["core", "pets", "records", "accounts"]  # records requires pets: after it, whatever the order
    pets = available("mysql", find_plugin("pets").migrations, "pets")
    assert pets[0].adopts() == {"pets"}
    assert "CREATE TABLE pets" not in (MIGRATIONS_DIR / "mysql" / "0001_initial.sql").read_text()


@pytest.mark.gen_test(timeout=30)
async def test_migrate_applies_everything_once_and_records_it_per_plugin(empty_url):
    db = await connect(profile_config(database_url=empty_url))
    todo_sources = sources(empty_url)
    try:
        expected = [(plugin, m.version) for plugin, folder in todo_sources
                    for m in available(db.dialect.name, folder, plugin)]
        assert [(m.plugin, m.version) for m in await pending(db, todo_sources)] == expected
        assert await _tables(db) == set()  # looking at what is pending creates nothing
        done = await migrate(db, todo_sources)
        assert [(m.plugin, m.version) for m in done] == expected
        assert not any(m.adopted for m in done)  # a new database runs every file
        assert expected[:9] == [("core", 1), ("core", 2), ("core", 3), ("accounts", 1), ("accounts", 2),
                                ("accounts", 3), ("accounts", 4), ("accounts", 5), ("pets", 1)]
        assert expected[-1] == ("reminders", 1)  # after the plugins it requires
        assert await _tables(db) == TABLES
        assert await applied(db) == set(expected)
        rows = await db.fetch_all("SELECT plugin, version, name FROM schema_migrations ORDER BY plugin, version")
        assert sorted(tuple(r) for r in rows) == sorted((m.plugin, m.version, m.name) for m in done)
        assert await db.fetch_all("SELECT * FROM schema_migration_lock") == []  # released
        assert await migrate(db, todo_sources) == []
        assert await pending(db, todo_sources) == []
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_plugin_with_its_own_0001_is_applied_after_its_requirements_and_kept_when_disabled(empty_url):
    db = await connect(profile_config(database_url=empty_url))
    try:
        with_notes = sources(empty_url, f"core,accounts,{NOTES},pets")
        assert [p for p, _ in with_notes] == ["core", "accounts", "pets", "notes"]
        done = await migrate(db, with_notes)
        assert [(m.plugin, m.version, m.name) for m in done][-5:] == [
            ("pets", 1, "initial"), ("pets", 2, "members"), ("pets", 3, "list_indexes"), ("pets", 4, "name_key"),
            ("notes", 1, "notes")]
        assert await applied_versions(db, "notes") == {1} and await applied_versions(db, "pets") == {1, 2, 3, 4}
        await db.execute("INSERT INTO users (email, password_hash, nickname, created_at, updated_at)"
                         " VALUES ('n@example.com', 'x', 'n', '2026-01-01', '2026-01-01')")
        user = await db.fetch_one("SELECT id FROM users")
        await db.execute("INSERT INTO pets (owner_id, name, species, created_at, updated_at)"
                         " VALUES (%s, 'Rex', 'dog', '2026-01-01', '2026-01-01')", (user[0],))
        pet = await db.fetch_one("SELECT id FROM pets")
        await db.execute("INSERT INTO notes (pet_id, text) VALUES (%s, 'kept')", (pet[0],))

        without = sources(empty_url, "core,accounts,pets,records")  # notes disabled, records enabled
        assert [(m.plugin, m.version) for m in await migrate(db, without)] == [("records", 1), ("records", 2),
                                                                                 ("records", 3), ("records", 4)]
        assert "notes" in await _tables(db)  # disabling a plugin never drops its tables
        assert await db.fetch_all("SELECT text FROM notes") == [("kept",)]
        assert await applied_versions(db, "notes") == {1}
    finally:
        await db.close()


AUDIT_TRIGGER = {
    "mysql": "CREATE TABLE pet_audit (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, pet_id BIGINT NOT NULL)"
             " ENGINE=InnoDB;\n"
             "-- two rows per pet: the body's statements end lines with ';' too\n"
             "CREATE TRIGGER trg_pet_audit AFTER INSERT ON pets FOR EACH ROW BEGIN\n"
             "  INSERT INTO pet_audit (pet_id) VALUES (NEW.id);\n"
             "  INSERT INTO pet_audit (pet_id) VALUES (-NEW.id);\n"
             "END;\n",
    "sqlite": "CREATE TABLE pet_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, pet_id INTEGER NOT NULL);\n"
              "-- two rows per pet: the body's statements end lines with ';' too\n"
              "CREATE TRIGGER trg_pet_audit AFTER INSERT ON pets BEGIN\n"
              "  INSERT INTO pet_audit (pet_id) VALUES (NEW.id);\n"
              "  INSERT INTO pet_audit (pet_id) VALUES (-NEW.id);\n"
              "END;\n",
}


@pytest.mark.gen_test(timeout=30)
async def test_a_trigger_whose_body_ends_lines_with_semicolons_is_one_statement(empty_url, tmp_path):
    for dialect, sql in AUDIT_TRIGGER.items():
        (tmp_path / "audit" / dialect).mkdir(parents=True)
        (tmp_path / "audit" / dialect / "0001_audit.sql").write_text(sql)
    migration = available("sqlite", tmp_path / "audit", "audit")[0]
    assert [s.split("\n")[0] for s in migration.statements()] == [
        "CREATE TABLE pet_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, pet_id INTEGER NOT NULL)",
        "CREATE TRIGGER trg_pet_audit AFTER INSERT ON pets BEGIN"]
    db = await connect(profile_config(database_url=empty_url))
    try:
        done = await migrate(db, [*sources(empty_url, "core,accounts,pets"), ("audit", tmp_path / "audit")])
        assert done[-1].label == "audit 0001_audit"
        await db.execute("INSERT INTO users (email, password_hash, nickname, created_at, updated_at)"
                         " VALUES ('a@example.com', 'x', 'a', '2026-01-01', '2026-01-01')")
        user = await db.fetch_one("SELECT id FROM users")
        await db.execute("INSERT INTO pets (owner_id, name, species, created_at, updated_at)"
                         " VALUES (%s, 'Rex', 'dog', '2026-01-01', '2026-01-01')", (user[0],))
        pet = await db.fetch_one("SELECT id FROM pets")
        assert await db.fetch_all("SELECT pet_id FROM pet_audit ORDER BY id") == [(pet[0],), (-pet[0],)]
    finally:
        await db.close()


async def _build_before_plugins(url: str) -> None:
    """A database as pet-api before plugins left it: its migrations, its ledger, and rows in every table."""
    db = await connect(profile_config(database_url=url))
    try:
        dialect = db.dialect.name
        await db.execute(OLD_LEDGER[dialect])
        for path in sorted((BEFORE_PLUGINS / dialect).glob("*.sql")):
            migration = available(dialect, BEFORE_PLUGINS)[int(path.name[:4]) - 1]
            for statement in migration.statements():
                await db.execute(statement)
            await db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                             (migration.version, migration.name, dt.datetime(2026, 1, 1, 12)))
        for n in (1, 2):
            await db.execute("INSERT INTO users (id, email, password_hash, nickname, created_at, updated_at)"
                             " VALUES (%s, %s, 'hash', %s, '2026-01-02 03:04:05', '2026-01-02 03:04:05')",
                             (n, f"user{n}@example.com", f"User {n}"))
            await db.execute("INSERT INTO pets (id, owner_id, name, species, birth_date, created_at, updated_at,"
                             " version) VALUES (%s, %s, %s, 'cat', '2020-02-29', '2026-01-02 03:04:05',"
                             " '2026-01-02 03:04:05', 3)", (10 + n, n, f"Pet {n}"))
            await db.execute("INSERT INTO records (id, pet_id, kind, date, note, value, created_at) VALUES"
                             " (%s, %s, 'weight', '2026-01-02', 'fine', 4.25, '2026-01-02 03:04:05')",
                             (100 + n, 10 + n))
    finally:
        await db.close()


async def _rows(db) -> dict[str, list[tuple]]:
    """The rows as the release before plugins wrote them (its columns: later migrations add others)."""
    columns = {"users": "*", "pets": "*", "records": "id, pet_id, kind, date, note, value, created_at"}
    return {table: [tuple(r) for r in await db.fetch_all(f"SELECT {what} FROM {table} ORDER BY id")]  # noqa: S608
            for table, what in columns.items()}


@pytest.mark.gen_test(timeout=60)
async def test_a_database_migrated_before_plugins_upgrades_with_every_row_intact(empty_url):
    await _build_before_plugins(empty_url)
    db = await connect(profile_config(database_url=empty_url))
    todo_sources = sources(empty_url)
    try:
        before = await _rows(db)
        assert [len(rows) for rows in before.values()] == [2, 2, 2]
        assert await applied(db) == {("core", 1), ("core", 2)}  # the old ledger reads as the core's
        assert [m.label for m in await pending(db, todo_sources)] == [
            "core 0003_idempotency", "accounts 0001_sessions", "accounts 0002_mail", "accounts 0003_mfa",
            "accounts 0004_admin_index", "accounts 0005_email_skeleton", "pets 0001_initial", "pets 0002_members",
            "pets 0003_list_indexes", "pets 0004_name_key",
            "records 0001_initial", "records 0002_due_dates", "records 0003_list_order", "records 0004_event_sequence",
            "households 0001_invitations", "households 0002_history", "reminders 0001_calendar_feeds"]

        done = await migrate(db, todo_sources)
        assert [(m.label, m.adopted) for m in done] == [
            ("core 0003_idempotency", False), ("accounts 0001_sessions", False), ("accounts 0002_mail", False),
            ("accounts 0003_mfa", False), ("accounts 0004_admin_index", False), ("accounts 0005_email_skeleton", False),
            ("pets 0001_initial", True), ("pets 0002_members", False), ("pets 0003_list_indexes", False),
            ("pets 0004_name_key", False),
            ("records 0001_initial", True), ("records 0002_due_dates", False), ("records 0003_list_order", False),
            ("records 0004_event_sequence", False), ("households 0001_invitations", False),
            ("households 0002_history", False), ("reminders 0001_calendar_feeds", False)]
        after = await _rows(db)
        assert {t: [r[:len(before[t][0])] for r in rows] for t, rows in after.items()} == before  # every row intact
        assert [r[len(before["users"][0]):] for r in after["users"]] == [(None, "en", None)] * 2  # accounts' columns
        members = await db.fetch_all("SELECT pet_id, user_id, role FROM pet_members ORDER BY pet_id")
        assert [tuple(r) for r in members] == [(11, 1, "owner"), (12, 2, "owner")]  # each owner is a member
        rows = await db.fetch_all("SELECT plugin, version, name FROM schema_migrations ORDER BY plugin, version")
        assert [tuple(r) for r in rows] == [
            ("accounts", 1, "sessions"), ("accounts", 2, "mail"), ("accounts", 3, "mfa"),
            ("accounts", 4, "admin_index"), ("accounts", 5, "email_skeleton"), ("core", 1, "initial"),
            ("core", 2, "exact_email_comparison"), ("core", 3, "idempotency"), ("households", 1, "invitations"),
            ("households", 2, "history"), ("pets", 1, "initial"), ("pets", 2, "members"),
            ("pets", 3, "list_indexes"), ("pets", 4, "name_key"), ("records", 1, "initial"),
            ("records", 2, "due_dates"), ("records", 3, "list_order"), ("records", 4, "event_sequence"),
            ("reminders", 1, "calendar_feeds")]
        old = await db.fetch_all("SELECT applied_at FROM schema_migrations WHERE plugin = 'core' AND version < 3")
        assert {str(r[0])[:19].replace("T", " ") for r in old} == {"2026-01-01 12:00:00"}  # not re-applied
        assert await pending(db, todo_sources) == [] and await migrate(db, todo_sources) == []
        old_record = await get_record(db, pet_id=11, record_id=101)  # no due date, last changed when created
        assert (old_record.due_date, old_record.completed_at, old_record.version) == (None, None, 1)
        assert old_record.updated_at == old_record.created_at == dt.datetime(2026, 1, 2, 3, 4, 5)
        # its event counts every revision of its pet (version 3), as before: a SEQUENCE a client holds never drops
        counted_from = await db.fetch_all("SELECT pet_version_at_creation FROM records ORDER BY id")
        assert [int(r[0]) for r in counted_from] == [1, 1]
        await db.execute("DELETE FROM users WHERE id = 1")  # the foreign keys survived the adoption
        assert [r[0] for r in await db.fetch_all("SELECT id FROM records ORDER BY id")] == [102]
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_pending_migration_stops_the_start_unless_auto_migrate(empty_url):
    config = profile_config(database_url=empty_url)
    db = await connect(config)
    try:
        await migrate(db, sources(empty_url))
        await db.execute("DELETE FROM schema_migrations WHERE plugin = 'records' AND version = 1")
    finally:
        await db.close()

    app = make_app(config)
    with pytest.raises(PendingMigrations) as caught:
        await app.startup()
    await app.shutdown()
    message = str(caught.value)
    assert "pending migrations records 0001_initial" in message  # an enabled plugin's, named
    assert "python main.py migrate --env=test" in message

    without_records = make_app(profile_config(database_url=empty_url, plugins=["core", "accounts", "pets"]))
    await without_records.startup()  # a disabled plugin's migrations do not hold the start
    await without_records.shutdown()

    db = await connect(config)
    try:
        await db.execute("DELETE FROM schema_migrations")
        for table in ("calendar_feeds", "invitations", "pet_history", "records", "pet_members", "pets",
                      "mfa_recovery_codes", "mfa_factors", "refresh_tokens", "sessions", "outbox", "account_tokens",
                      "token_revocations", "login_failures",
                      "users", "idempotency_keys"):
            await db.execute(f"DROP TABLE {table}")
    finally:
        await db.close()
    dev_like = make_app(profile_config(database_url=empty_url, auto_migrate=True,
                                       plugins=SOURCE_PLUGINS.split(",")))  # as sources()
    await dev_like.startup()  # dev applies them itself
    try:
        assert await pending(dev_like.db, sources(empty_url)) == []
        assert await _tables(dev_like.db) == TABLES
    finally:
        await dev_like.shutdown()


@pytest.mark.parametrize("empty_url", ["mysql"], indirect=True)  # SQLite: one embedded connection, no race
@pytest.mark.gen_test(timeout=30)
async def test_two_migrators_at_once_apply_each_migration_once(empty_url):
    config = profile_config(database_url=empty_url)
    first, second = await connect(config), await connect(config)
    todo_sources = sources(empty_url)
    count = len(await pending(first, todo_sources))
    try:
        results = await asyncio.gather(migrate(first, todo_sources), migrate(second, todo_sources),
                                       return_exceptions=True)
        assert sorted(len(r) for r in results) == [0, count], results  # one waited, then had nothing to do
        assert await pending(first, todo_sources) == []
        assert await _tables(first) == TABLES
        rows = await first.fetch_all("SELECT COUNT(*), COUNT(DISTINCT plugin, version) FROM schema_migrations")
        assert tuple(rows[0]) == (count, count)
    finally:
        await first.close()
        await second.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_live_lock_makes_a_migrator_wait_and_a_stale_one_is_taken_over(empty_url, caplog):
    config = profile_config(database_url=empty_url)
    db = await connect(config)
    try:
        async with migration_lock(db) as holder:
            with pytest.raises(MigrationLockTimeout) as caught:
                async with migration_lock(db, wait=0.6):
                    pass
            assert holder.split(":")[1] in str(caught.value)  # names the holder (host:pid:...)
        assert await db.fetch_all("SELECT * FROM schema_migration_lock") == []

        long_ago = dt.datetime(2026, 1, 1)
        await db.execute("INSERT INTO schema_migration_lock (id, owner, taken_at, expires_at) VALUES"
                         " (1, 'dead-host:123:abcd', %s, %s)", (long_ago, long_ago + dt.timedelta(minutes=5)))
        with caplog.at_level(logging.WARNING, logger="pet_api.migrations"):
            done = await migrate(db, sources(empty_url))
        # core's; accounts' five; pets' four, records' four, households' two; reminders'
        assert len(done) == len(available(db.dialect.name)) + 16
        assert any("took over a stale migration lock held by dead-host:123:abcd" in r.getMessage()
                   for r in caplog.records), caplog.text
        assert await db.fetch_all("SELECT * FROM schema_migration_lock") == []
    finally:
        await db.close()


def test_core_source_is_the_migrations_folder():
    assert CORE_SOURCE == ("core", MIGRATIONS_DIR)
