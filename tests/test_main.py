"""The command line, run as a user would: config errors, routes, migrate, create-admin, and prod start-up."""

import itertools
import os
import pty
import secrets
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from server.config import load_config
from server.db.migrations import available
from server.registry import load_plugins
from tests.mariadb_server import connect_database, create_database, data_only_account
from tests.processes import ROOT, ServerProcess, clean_env, free_port, get, one_line, run_main

SECRET = secrets.token_urlsafe(40)
FAST_HASH = {"PET_API_PASSWORD_HASH_TIME_COST": "1", "PET_API_PASSWORD_HASH_MEMORY_KIB": "8192"}
_names = itertools.count(1)
BOOM = "tests.handlers.boom_plugin"  # a test-only plugin whose route raises


run = run_main


def new_database(server_url: str) -> str:
    return create_database(server_url, f"pet_api_cli_{os.getpid()}_{next(_names)}")


# ---- configuration errors: one line naming the key, non-zero exit

def test_prod_without_a_secret_key_exits_with_one_line_naming_it():
    result = run("--env=prod", PET_API_SECRET_KEY="")
    assert result.returncode != 0
    assert "PET_API_SECRET_KEY" in one_line(result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize(("env", "key"), [
    ({"PET_API_PORT": "eighty"}, "PET_API_PORT"),
    ({"PET_API_SECRET_KEY": "changeme-changeme-changeme-changeme-1234"}, "PET_API_SECRET_KEY"),
    ({"PET_API_DEBUG": "true"}, "PET_API_DEBUG"),
    ({"PET_API_PLUGINS": "core,nope"}, "PET_API_PLUGINS"),
])
def test_a_malformed_prod_value_exits_with_one_line_naming_the_key(env, key):
    result = run("--env=prod", **{"PET_API_SECRET_KEY": SECRET, "PET_API_DATABASE_URL": "mysql://u@db/pets", **env})
    assert result.returncode == 2
    assert key in one_line(result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--port", "70000", "config error: --port: Input should be less than or equal to 65535"),
    ("--workers", "-1", "config error: --workers: Input should be greater than or equal to 0"),
])
def test_a_bad_option_exits_with_one_line_naming_the_option_not_its_variable(option, value, says):
    result = run("--env=test", option, value, PET_API_PORT="8000")
    assert (result.returncode, result.stdout, one_line(result.stderr)) == (2, "", says)


def test_options_before_the_subcommand_are_kept():
    # argparse's subparser defaults used to reset --env to dev here: prod's checks must apply
    result = run("--env=prod", "migrate", PET_API_SECRET_KEY="")
    assert result.returncode == 2
    assert "PET_API_SECRET_KEY" in one_line(result.stderr)


# ---- routes

def test_routes_prints_method_path_plugin_and_scopes():
    result = run("routes", "--env=test")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["METHOD", "PATH", "PLUGIN", "SCOPES"]
    assert ["GET", "/v1/health", "core", "-"] in rows
    assert ["POST", "/v1/users", "accounts", "-"] in rows
    assert ["GET", "/v1/users", "accounts", "users:admin"] in rows
    assert ["PATCH", "/v1/users/me", "accounts", "users:me"] in rows
    assert ["DELETE", "/v1/tokens/current", "accounts", "(any", "token)"] in rows
    assert ["POST", "/v1/pets", "pets", "pets:write"] in rows
    scopes = result.stdout.split("\n\n")[1].splitlines()  # then every scope the enabled plugins declare
    assert scopes[0].split() == ["SCOPE", "PLUGIN", "DESCRIPTION"]
    assert [line.split()[:2] for line in scopes[1:]] == [
        ["users:me", "accounts"], ["users:admin", "accounts"], ["pets:read", "pets"], ["pets:write", "pets"],
        ["pets:admin", "pets"]]


def test_a_misspelt_variable_is_reported_and_a_plugin_setting_or_a_known_one_is_not():
    result = run("routes", "--env=test", PET_API_DATABSE_URL="mysql://x@db/pets", PET_API_TOKEN_EXPIRY="60",
                 PET_API_ADMIN_PASSWORD="long-enough-password", PET_API_WEIGHT__DEFAULT_UNIT="kg",
                 PET_API_LOG_LEVEL="INFO", PET_API_ACOUNTS__MAIL_TRANSPORT="smtp", PET_API_ENV="prod")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [  # a disabled plugin's setting (weight) is not reported
        "pet-api: warning: PET_API_DATABSE_URL is not a setting and is ignored",
        "pet-api: warning: PET_API_ENV is not a setting and is ignored",
        "pet-api: warning: PET_API_TOKEN_EXPIRY is not a setting and is ignored",
        "pet-api: warning: PET_API_ACOUNTS__MAIL_TRANSPORT is not a setting and is ignored"]
    assert "/v1/pets" in result.stdout  # the command itself ran


def test_routes_lists_only_the_plugins_in_the_profile():
    result = run("routes", "--env=test", PET_API_PLUGINS="core")
    assert result.returncode == 0, result.stderr
    routes, scopes = result.stdout.split("\n\n")
    plugins = {line.split()[2] for line in routes.splitlines()[1:]}
    assert plugins == {"core"}
    assert scopes.splitlines() == ["SCOPE  PLUGIN  DESCRIPTION"]  # core declares none


def test_plugins_shows_every_plugins_version_whatever_its_source():
    """A built-in's is pet-api's (the installed distribution's); a path plugin's is the version= it declares."""
    from server.plugins import find_plugin

    result = run("plugins", "--env=test", PET_API_PLUGINS=f"core,{BOOM}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    blocks = {line.split()[0]: lines[i + 1] for i, line in enumerate(lines) if not line.startswith(" ")}
    assert blocks["boom"] == "  version:    9.9.9"
    assert blocks["core"] == f"  version:    {find_plugin('core').version or '-'}"
    assert blocks["pets"] == blocks["core"]  # disabled, listed all the same


def test_plugins_says_why_the_database_could_not_tell_the_migrations(any_url):
    """Unreachable (and why) is not the same as a database that refused the read (a ledger changed by hand)."""
    unreachable = f"mysql://root:hunter2-secret@127.0.0.1:{free_port()}/nothing"
    result = run("plugins", "--env=test", PET_API_DATABASE_URL=unreachable, PET_API_PLUGINS="core")
    assert result.returncode == 0, result.stderr
    assert "  migrations: database unreachable: cannot connect (connection refused" in result.stdout
    assert "hunter2-secret" not in result.stdout + result.stderr

    execute(any_url, "CREATE TABLE schema_migrations (something INTEGER)")
    result = run("plugins", "--env=test", PET_API_DATABASE_URL=any_url, PET_API_PLUGINS="core")
    assert result.returncode == 0, result.stderr
    server_error = ("error 1054: Unknown column 'version'" if any_url.startswith("mysql")
                    else "SQLITE_ERROR: no such column: version")
    said = [line for line in result.stdout.splitlines()
            if line.startswith("  migrations: ") and line != "  migrations: -"]  # "-": a plugin without any
    assert said and all(line.startswith(f"  migrations: the database refused a statement: {server_error}")
                        for line in said), said


# ---- a plugin's own bug in a hook: one line naming the plugin and the hook, exit 2

@pytest.mark.parametrize(("args", "sample", "says"), [
    (["routes"], "setup_fails",
     "routes: plugin 'setup_fails': setup failed: RuntimeError: this plugin fails its setup on purpose"),
    (["serve"], "setup_fails",
     "pet-api: plugin 'setup_fails': setup failed: RuntimeError: this plugin fails its setup on purpose"),
    (["serve"], "start_fails",
     "pet-api: plugin 'start_fails': on_start failed: RuntimeError: this plugin fails to start on purpose"),
    (["migrate"], "after_migrate_fails",
     "migrate: plugin 'after_migrate_fails': after_migrate failed: ValueError: this backfill fails on purpose"),
    (["migrate"], "after_migrate_none",
     "migrate: plugin 'after_migrate_none': after_migrate returned NoneType, not a list of lines (str)"),
], ids=["routes-setup", "serve-setup", "serve-on_start", "migrate-after_migrate", "migrate-after_migrate_none"])
def test_a_plugin_hook_that_raises_stops_the_command_with_one_line_naming_it(tmp_path, args, sample, says):
    """As for a plugin that fails to import (a traceback and exit 1 before; after_migrate returning None was a
    TypeError from the loop printing its lines)."""
    if args == ["serve"]:
        args = ["serve", "--port", str(free_port())]
    result = run(*args, "--env=dev", timeout=20, PET_API_DATABASE_URL=f"sqlite:///{tmp_path}/dev.sqlite3",
                 PET_API_PLUGINS=f"core,accounts,pets,tests.plugins.samples.{sample}")
    assert (result.returncode, one_line(result.stderr)) == (2, says)


# ---- migrate, and prod refusing a schema that is behind

def test_prod_refuses_to_start_while_a_migration_is_pending(mysql_server_url):
    url = new_database(mysql_server_url)
    migrated = run("migrate", "--env=test", PET_API_DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stderr
    conn = connect_database(url)
    try:
        conn.cursor().execute("DELETE FROM schema_migrations WHERE plugin = 'pets' AND version = 1")
    finally:
        conn.close()
    start = time.monotonic()
    result = run("--env=prod", "--port", str(free_port()), PET_API_SECRET_KEY=SECRET, PET_API_DATABASE_URL=url)
    assert time.monotonic() - start < 15
    assert result.returncode == 3
    line = one_line(result.stderr)
    assert "pending migrations pets 0001_initial" in line  # an enabled plugin's migration, named
    assert "python main.py migrate --env=prod" in line


def test_migrate_keys_the_accounts_from_before_the_look_alike_rule(mysql_server_url):
    """`main.py migrate` gives old accounts their look-alike key (accounts 0005), so a large deployment's first start
    is not the one doing it within systemd's start timeout; the operator reads what it did."""
    url = new_database(mysql_server_url)
    assert run("migrate", "--env=test", PET_API_DATABASE_URL=url).returncode == 0
    conn = connect_database(url)
    try:
        with conn.cursor() as cur:  # as an instance before accounts 0005 wrote them: no key
            for email in ("ann@example.com", "\u0430nn@example.com", "ben@example.com"):  # a Cyrillic 'а'
                cur.execute("INSERT INTO users (email, password_hash, nickname, created_at, updated_at)"
                            " VALUES (%s, 'h', 'old', NOW(6), NOW(6))", (email,))
            cur.execute("SELECT id FROM users WHERE email = %s", ("\u0430nn@example.com",))
            (twin,) = cur.fetchone()
        migrated = run("migrate", "--env=test", PET_API_DATABASE_URL=url)
        assert migrated.returncode == 0, migrated.stderr
        assert migrated.stdout.splitlines() == [
            "database is up to date", "accounts: look-alike keys set for 2 accounts",
            f"accounts: accounts [{twin}] are look-alikes of older accounts, registered before the rule: they keep"
            " working; see docs/security.md"]
        with conn.cursor() as cur:
            cur.execute("SELECT email, email_skeleton IS NOT NULL FROM users ORDER BY id")
            assert cur.fetchall() == (("ann@example.com", 1), ("\u0430nn@example.com", 0), ("ben@example.com", 1))
    finally:
        conn.close()


def test_an_unreachable_database_at_start_says_why_without_the_password(mysql_server_url):
    server = mysql_server_url.split("@", 1)[1].split("/", 1)[0]  # host:port of the session's MariaDB
    cases = [
        (f"mysql://root:hunter2-secret@{server}/pet_api", "access denied (wrong user or password"),
        (f"mysql://root@{server}/no_such_database_here", "no usable database (Unknown database"),
        (f"mysql://root:hunter2-secret@127.0.0.1:{free_port()}/pet_api", "cannot connect (connection refused"),
    ]
    for url, why in cases:
        served = run("--env=prod", "--port", str(free_port()), PET_API_SECRET_KEY=SECRET, PET_API_DATABASE_URL=url)
        migrated = run("migrate", "--env=prod", PET_API_SECRET_KEY=SECRET, PET_API_DATABASE_URL=url)
        assert (served.returncode, migrated.returncode) == (4, 4), url
        for line in (one_line(served.stderr), one_line(migrated.stderr)):
            assert why in line, line
            assert "hunter2-secret" not in line


@pytest.mark.parametrize("options", [["--env=test"], ["--env=prod"], ["--env=dev", "--workers", "2"]])
def test_a_start_with_the_database_unreachable_names_it_once(options):
    """README: one line naming the database as mysql://***@host:port/name, as migrate does; once, not once per
    worker (dev applies migrations in each worker's start, so the workers used to be the ones to find out)."""
    port = free_port()
    url = f"mysql://root:hunter2-secret@127.0.0.1:{port}/nothing?ssl=off"
    result = run(*options, "--port", str(free_port()), PET_API_DATABASE_URL=url, PET_API_SECRET_KEY=SECRET)
    assert result.returncode == 4, result.stderr
    assert result.stderr.splitlines() == [
        f"pet-api: the database at mysql://***@127.0.0.1:{port}/nothing is unreachable at start-up: cannot connect"
        " (connection refused, or the host is unreachable)"]
    assert "worker" not in result.stdout  # no worker was forked


@pytest.mark.parametrize("command", [["migrate"], ["create-admin", "--email", "a@example.com"]])
def test_commands_with_the_database_unreachable_say_so_in_one_line(command):
    url = f"mysql://root:hunter2-secret@127.0.0.1:{free_port()}/nothing"
    result = run(*command, "--env=test", PET_API_DATABASE_URL=url, PET_API_ADMIN_PASSWORD="long-enough-password")
    assert result.returncode == 4
    line = one_line(result.stderr)
    assert "is unreachable" in line
    assert "hunter2-secret" not in line


def execute(url: str, *statements: str) -> None:
    """Statements run on the database of a mysql:// or sqlite:/// URL, committed."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else connect_database(url)
    try:
        for statement in statements:
            conn.cursor().execute(statement)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(params=["mysql", "sqlite"])
def any_url(request, tmp_path):
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cli.sqlite3"
    return new_database(request.getfixturevalue("mysql_server_url"))


def test_migrate_names_the_migration_the_database_refuses_and_the_servers_error(any_url):
    """A half-applied migration (its columns there, its row not) is not an outage: one line, exit 5."""
    assert run("migrate", "--env=test", PET_API_DATABASE_URL=any_url).returncode == 0
    execute(any_url, "DELETE FROM schema_migrations WHERE plugin = 'records' AND version = 2")
    result = run("migrate", "--env=test", PET_API_DATABASE_URL=any_url)
    assert (result.returncode, result.stdout) == (5, ""), result.stderr
    server_error = ("error 1060: Duplicate column name 'due_date'" if any_url.startswith("mysql")
                    else "SQLITE_ERROR: duplicate column name: due_date")
    assert one_line(result.stderr) == f"migrate: migration records 0002_due_dates failed: {server_error}"


def test_migrate_without_the_privileges_says_which_the_database_refused(mysql_server_url):
    url = new_database(mysql_server_url)
    database = url.rsplit("/", 1)[1]
    with data_only_account(url) as data_only:
        first = run("migrate", "--env=prod", PET_API_SECRET_KEY=SECRET, PET_API_DATABASE_URL=data_only)
        assert (first.returncode, first.stdout) == (5, ""), first.stderr
        assert one_line(first.stderr) == (
            f"migrate: taking the migration lock (schema_migration_lock) failed: error 1142: CREATE command denied to"
            f" user '{database}_data'@'127.0.0.1' for table `{database}`.`schema_migration_lock`")
        assert run("migrate", "--env=test", PET_API_DATABASE_URL=url).returncode == 0
        execute(url, "DELETE FROM schema_migrations WHERE plugin = 'reminders' AND version = 1",
                "DROP TABLE calendar_feeds")  # as if reminders 0001 were new in this release
        second = run("migrate", "--env=prod", PET_API_SECRET_KEY=SECRET, PET_API_DATABASE_URL=data_only)
        assert (second.returncode, second.stdout) == (5, ""), second.stderr
        line = one_line(second.stderr)
        assert line.startswith("migrate: migration reminders 0001_calendar_feeds failed: error 1142: CREATE command"
                               " denied"), line
        assert "data-only" not in line


def test_a_start_the_database_refuses_a_statement_says_so_in_one_line(mysql_server_url):
    """A start the database refuses a statement of (an account that may read the ledger but not the tables the
    start reads) is neither an outage nor a traceback: one line with the server's error, exit 5."""
    url = new_database(mysql_server_url)
    database = url.rsplit("/", 1)[1]
    assert run("migrate", "--env=test", PET_API_DATABASE_URL=url).returncode == 0
    user = f"{database}_ledger"
    execute(url, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'ledger-only'",
            f"GRANT SELECT ON `{database}`.schema_migrations TO '{user}'@'%'")
    try:
        narrow = url.replace("//root:@", f"//{user}:ledger-only@", 1)
        assert narrow != url
        result = run("--env=prod", "--port", str(free_port()), "--workers", "1", PET_API_SECRET_KEY=SECRET,
                     PET_API_DATABASE_URL=narrow)
    finally:
        execute(url, f"DROP USER '{user}'@'%'")
    assert (result.returncode, result.stdout) == (5, ""), result.stderr
    line = one_line(result.stderr)
    assert line.startswith("pet-api: the database refused a statement at start-up: error 1142: SELECT command"
                           " denied"), line
    assert "ledger-only" not in line


def test_a_dev_start_whose_plugin_migration_is_refused_names_it_in_one_line(any_url):
    """dev applies migrations at start: one the database refuses ends the start as it ends `migrate`, naming the
    migration and the server's error, exit 5 (a MigrationFailed traceback, exit 1; a hang on SQLite)."""
    plugins = "core,accounts,pets,tests.plugins.samples.migration_refused"
    result = run("--env=dev", "--port", str(free_port()), timeout=20, PET_API_DATABASE_URL=any_url,
                 PET_API_PLUGINS=plugins)
    assert result.returncode == 5, result.stderr
    server_error = ("error 1064: You have an error in your SQL syntax" if any_url.startswith("mysql")
                    else 'SQLITE_ERROR: near "TABEL": syntax error')
    assert one_line(result.stderr).startswith(
        f"pet-api: migration migration_refused 0001_refused failed: {server_error}"), result.stderr


def test_create_admin_on_a_database_not_migrated_says_run_migrate(any_url):
    env = {"PET_API_DATABASE_URL": any_url, "PET_API_ADMIN_PASSWORD": "long-enough-password", **FAST_HASH}
    empty = run("create-admin", "--env=test", "--email", "a@example.com", **env)
    assert (empty.returncode, empty.stdout) == (3, ""), empty.stderr
    line = one_line(empty.stderr)
    assert line.startswith("create-admin: database schema is behind: pending migrations core 0001_initial, "), line
    assert line.endswith("; run 'python main.py migrate --env=test' first")
    assert run("migrate", "--env=test", PET_API_DATABASE_URL=any_url).returncode == 0
    execute(any_url, "DELETE FROM schema_migrations WHERE plugin = 'accounts' AND version = 5")
    behind = run("create-admin", "--env=test", "--email", "a@example.com", **env)
    assert (behind.returncode, behind.stdout) == (3, ""), behind.stderr
    assert one_line(behind.stderr) == ("create-admin: database schema is behind: pending migrations accounts"
                                       " 0005_email_skeleton; run 'python main.py migrate --env=test' first")


LOCK_ROW = ("INSERT INTO schema_migration_lock (id, owner, taken_at, expires_at) VALUES (1, 'other-host:4242:beef',"
            " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL {seconds} SECOND)")


def test_migrate_says_whom_it_waits_for_and_takes_a_lock_left_by_a_killed_migrate_over(mysql_server_url):
    url = new_database(mysql_server_url)
    assert run("migrate", "--env=test", PET_API_DATABASE_URL=url).returncode == 0
    execute(url, LOCK_ROW.format(seconds=2))  # a migrate killed 4 min 58 s ago: not renewed, expiring
    result = run("migrate", "--env=test", PET_API_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "database is up to date"
    waiting, took_over = result.stderr.splitlines()
    assert waiting.startswith("migrate: waiting for the migration lock: another migrate"
                              " (other-host:4242:beef, since "), waiting
    assert " UTC) holds it; taken over if not renewed by " in waiting
    assert waiting.endswith(" UTC, else given up after 3600 s")
    assert took_over.startswith("took over a stale migration lock held by other-host:4242:beef since ")


def test_migrate_gives_up_on_a_lock_held_too_long_with_one_line(mysql_server_url):
    url = new_database(mysql_server_url)
    assert run("migrate", "--env=test", PET_API_DATABASE_URL=url).returncode == 0
    execute(url, LOCK_ROW.format(seconds=300))  # a live migrate, renewing its lock
    patched = "import sys, main, server.db.migrations as m; m.LOCK_WAIT_SECONDS = 1; sys.exit(main.main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", patched, "migrate", "--env=test"], cwd=ROOT, text=True,
                            env=clean_env(PET_API_DATABASE_URL=url), capture_output=True, timeout=30)
    assert (result.returncode, result.stdout) == (6, ""), result.stderr
    waiting, gave_up = result.stderr.splitlines()
    assert waiting.endswith(" UTC, else given up after 1 s"), waiting
    assert gave_up.startswith("migrate: another migrate (other-host:4242:beef, since "), gave_up
    assert gave_up.endswith(") holds the migration lock; try again later")


def test_a_dev_start_that_waits_too_long_for_the_migration_lock_exits_6_with_one_line(mysql_server_url):
    url = new_database(mysql_server_url)
    assert run("migrate", "--env=test", PET_API_DATABASE_URL=url).returncode == 0
    execute(url, "DELETE FROM schema_migrations WHERE plugin = 'records' AND version = 2",  # one pending
            LOCK_ROW.format(seconds=300))  # and a live migrate holding the lock
    patched = "import sys, main, server.db.migrations as m; m.LOCK_WAIT_SECONDS = 1; sys.exit(main.main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", patched, "--env=dev", "--port", str(free_port())], cwd=ROOT,
                            text=True, env=clean_env(PET_API_DATABASE_URL=url), capture_output=True, timeout=30)
    assert result.returncode == 6, result.stderr
    line = one_line(result.stderr)
    assert line.startswith("pet-api: another migrate (other-host:4242:beef, since "), line
    assert line.endswith(") holds the migration lock; try again later")


# ---- a prod server on a database migrated from empty

@dataclass
class ProdServer:
    process: ServerProcess
    database_url: str
    env_port: int  # PET_API_PORT, which --port overrides


@pytest.fixture(scope="module")
def prod_server(mysql_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdServer]:
    url = new_database(mysql_server_url)
    env = {"PET_API_SECRET_KEY": SECRET, "PET_API_DATABASE_URL": url, **FAST_HASH}
    first = run("--env=prod", "migrate", **env)
    assert first.returncode == 0, first.stderr
    expected = [f"applied {m.label}" for plugin, folder in load_plugins(load_config("prod", environ=env))
                .migration_sources() for m in available("mysql", folder, plugin)]
    assert first.stdout.splitlines() == expected
    assert expected[0] == "applied core 0001_initial"
    assert {"applied pets 0001_initial", "applied records 0001_initial"} <= set(expected)
    again = run("migrate", "--env=prod", **env)
    assert again.stdout.strip() == "database is up to date"

    env_port = free_port()
    with ServerProcess(tmp_path_factory.mktemp("prod") / "server.log",
                       clean_env(**env, PET_API_PORT=str(env_port), PET_API_PLUGINS=f"core,accounts,{BOOM}"),
                       profile="prod", args=("--host", "127.0.0.1")) as process:
        yield ProdServer(process, url, env_port)


def test_prod_starts_after_migrate_and_the_flag_port_wins(prod_server):
    health = prod_server.process.request("GET", "/v1/health")
    assert health.answer() == (200, {"code": 200, "data": {"status": "ok"}, "message": "ok"})
    assert health.headers["content-type"] == "application/json; charset=UTF-8"
    assert prod_server.process.request("GET", "/v1/health/ready").answer() == (
        200, {"code": 200, "data": {"status": "ok"}, "message": "ok"})
    with pytest.raises(OSError):
        get(prod_server.env_port, "/v1/health")  # PET_API_PORT lost to --port


def test_prod_errors_carry_no_trace(prod_server):
    call = prod_server.process.request
    assert call("GET", "/v1/boom").answer() == (
        500, {"error_code": 999, "message": "server error", "request": "GET /v1/boom"})
    assert call("GET", "/v1/nope?q=1").answer() == (
        404, {"error_code": 1007, "message": "no such route", "request": "GET /v1/nope"})
    assert call("DELETE", "/v1/health").answer() == (
        405, {"error_code": 1007, "message": "method not allowed", "request": "DELETE /v1/health"})


def test_create_admin_creates_and_promotes(prod_server):
    call = prod_server.process.request
    env = {"PET_API_SECRET_KEY": SECRET, "PET_API_DATABASE_URL": prod_server.database_url, **FAST_HASH}
    email = f"owner{next(_names)}@example.com"
    assert call("POST", "/v1/users", json={"email": email, "password": "first-password", "nickname": "o"}).status == 201
    status, body = call("POST", "/v1/tokens", json={"account": email, "secret": "first-password"}).answer()
    assert status == 201
    user_token = body["data"]["token"]
    assert "users:admin" not in body["data"]["scopes"]

    promoted = run("create-admin", "--env=prod", "--email", email.upper(), PET_API_ADMIN_PASSWORD="promotion-secret-1",
                   **env)
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.startswith(f"promoted {email} (id ")
    status, body = call("POST", "/v1/tokens", json={"account": email, "secret": "promotion-secret-1"}).answer()
    assert status == 201
    assert "users:admin" in body["data"]["scopes"]
    status, body = call("GET", "/v1/users", token=body["data"]["token"]).answer()
    assert status == 200
    assert body["page"]["total"] >= 1
    time.sleep(1)  # the server's revocation refresh (0.5 s in prod) picks up the new cut-off
    status, body = call("GET", "/v1/users/me", token=user_token).answer()
    assert (status, body["error_code"]) == (401, 10033)  # the new password revoked earlier tokens

    fresh = f"admin{next(_names)}@example.com"
    created = run("create-admin", "--env=prod", "--email", fresh, PET_API_ADMIN_PASSWORD="another-password", **env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"created admin {fresh} (id ")
    status, body = call("POST", "/v1/tokens", json={"account": fresh, "secret": "another-password"}).answer()
    assert status == 201
    assert {"users:admin", "pets:admin"} <= set(body["data"]["scopes"])


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--email", "x@example.com"], {}, "PET_API_ADMIN_PASSWORD"),  # no variable, no terminal to ask on
    (["--email", "x@example.com"], {"PET_API_ADMIN_PASSWORD": "short"}, "password"),
    (["--email", "not-an-email"], {"PET_API_ADMIN_PASSWORD": "long-enough-password"}, "email"),
])
def test_create_admin_refuses_with_one_line(prod_server, args, env, says):
    result = run("create-admin", "--env=prod", *args, PET_API_SECRET_KEY=SECRET,
                 PET_API_DATABASE_URL=prod_server.database_url, **env)
    assert result.returncode == 2
    assert says in one_line(result.stderr)
    assert "Traceback" not in result.stderr


def _typed_at_the_prompts(*keys: bytes) -> tuple[int, list[str]]:
    """`main.py create-admin` on a terminal (a pty), each of keys typed once its prompt shows: the exit code and the
    lines the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: nothing of pytest's may run here
        try:
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "main.py", "create-admin", "--env=test", "--email",
                                       "a@example.com"], clean_env())
        finally:
            os._exit(127)
    shown, deadline = b"", time.monotonic() + 30
    try:
        for typed, key in enumerate(keys, 1):
            while shown.count(b"password") + shown.count(b"again") < typed and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.5)[0]:
                    shown += os.read(fd, 4096)
            os.write(fd, key)
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                shown += chunk
    except OSError:  # EIO: the child has closed the terminal
        pass
    finally:
        os.close(fd)
    ended, status = os.waitpid(pid, os.WNOHANG)
    while not ended and time.monotonic() < deadline:
        time.sleep(0.05)
        ended, status = os.waitpid(pid, os.WNOHANG)
    if not ended:  # still at a prompt after 30 s
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), [line for line in shown.decode().splitlines() if line.strip()]


@pytest.mark.parametrize(("keys", "code", "says"), [
    ((b"\x04",), 130, "create-admin: cancelled"),  # Ctrl-D: it was an EOFError traceback
    ((b"\x03",), 130, "create-admin: cancelled"),  # Ctrl-C
    ((b"first-password\n", b"other-password\n"), 2, "create-admin: password: the two passwords do not match"),
])
def test_create_admin_at_its_prompt_cancels_or_refuses_with_one_line(keys, code, says):
    returncode, lines = _typed_at_the_prompts(*keys)
    assert (returncode, lines[-1]) == (code, says), lines
    assert not any("Traceback" in line or "at least 8" in line for line in lines)


def test_the_access_log_holds_no_credentials(prod_server):
    call = prod_server.process.request
    secret_password = "pa55-" + secrets.token_hex(8)
    email = f"log{next(_names)}@example.com"
    call("POST", "/v1/users", json={"email": email, "password": secret_password, "nickname": "l"})
    status, body = call("POST", "/v1/tokens", json={"account": email, "secret": secret_password}).answer()
    token = body["data"]["token"]
    assert call("GET", "/v1/users/me", token=token).status == 200
    time.sleep(0.3)
    log = prod_server.process.output()
    assert '"path":"/v1/users/me"' in log.replace(" ", "")
    assert secret_password not in log
    assert token not in log
    assert token.rsplit(".", 1)[1] not in log


def test_dev_serves_accounts_on_embedded_sqlite_within_5_seconds(tmp_path):
    env = clean_env(PET_API_DATABASE_URL=f"sqlite:///{tmp_path}/dev.sqlite3", **FAST_HASH)
    process = ServerProcess(tmp_path / "server.log", env, profile="dev")
    try:
        process.wait_ready(timeout=5)
        status, body = process.request("POST", "/v1/users", json={
            "email": "dev@example.com", "password": "dev-password", "nickname": "Dev"}).answer()
        assert status == 201, body
        status, token = process.request("POST", "/v1/tokens", json={
            "account": "dev@example.com", "secret": "dev-password"}).answer()
        assert status == 201, token
        status, me = process.request("GET", "/v1/users/me", token=token["data"]["token"]).answer()
        assert status == 200
        assert me["data"] == body["data"]
    finally:
        process.stop()


def test_the_env_file_is_read_as_systemd_reads_it_and_wins_over_the_shell(tmp_path):
    from server.config import ConfigError, read_env_file

    env_file = tmp_path / "env"
    env_file.write_text(
        "# comment\n; another\n\n"
        f"PET_API_SECRET_KEY='{SECRET}'\n"
        'PET_API_DATABASE_URL="mysql://pet_api:p\\"w@db.internal:3306/pet_api"\n'
        "PET_API_PLUGINS=core,accounts,\\\npets\n"
        "PET_API_TOKEN_EXPIRATION = 600\n")
    assert read_env_file(env_file) == {
        "PET_API_SECRET_KEY": SECRET, "PET_API_DATABASE_URL": 'mysql://pet_api:p"w@db.internal:3306/pet_api',
        "PET_API_PLUGINS": "core,accounts,pets", "PET_API_TOKEN_EXPIRATION": "600"}
    result = run("routes", "--env=prod", "--env-file", str(env_file), PET_API_PLUGINS="core")
    assert result.returncode == 0, result.stderr
    assert "/v1/pets" in result.stdout  # the file's plugin list won over the shell's "core"
    assert result.stderr == ""

    (tmp_path / "bad").write_text("PET_API_PORT=1\nexport PET_API_DEBUG=1\n")
    with pytest.raises(ConfigError, match="line 2: not KEY=VALUE"):
        read_env_file(tmp_path / "bad")
    missing = run("routes", "--env=prod", "--env-file", str(tmp_path / "nope"))
    assert (missing.returncode, one_line(missing.stderr)) == (
        2, f"config: cannot read the env file {tmp_path / 'nope'}: No such file or directory")


def test_an_env_file_that_is_not_utf8_is_a_config_error(tmp_path):
    (tmp_path / "env").write_bytes(b"PET_API_SECRET_KEY=s3cr\xe9t-value\n")
    result = run("routes", "--env=prod", "--env-file", str(tmp_path / "env"))
    assert (result.returncode, one_line(result.stderr)) == (2, f"config: {tmp_path / 'env'} line 1: not UTF-8 text")


def test_the_example_env_file_parses_and_its_placeholder_secret_is_refused():
    from server.config import read_env_file

    example = read_env_file(ROOT / "deploy" / "pet-api.env.example")
    assert set(example) == {"PET_API_SECRET_KEY", "PET_API_DATABASE_URL"}
    result = run("routes", "--env=prod", "--env-file", str(ROOT / "deploy" / "pet-api.env.example"))
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("config error: PET_API_SECRET_KEY (secret_key): ")
