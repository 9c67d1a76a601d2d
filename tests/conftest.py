"""Shared fixtures: the app built by the factory from the test profile, on a real MariaDB (or SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import tornado.ioloop
from tornado.httpclient import AsyncHTTPClient

from server import make_app
from server.app import PetAPI
from server.config import Config, load_config
from server.connections import make_http_server
from server.db import connect
from server.db.migrations import migrate
from server.registry import load_plugins

# The shared helpers assert too (assert_error, the private servers): pytest rewrites them only when told before
# their first import, so a failing check shows the values it compared.
pytest.register_assert_rewrite("tests.factories", "tests.mariadb_server", "tests.secrets_watch", "tests.processes",
                               "tests.galera", "tests.mail")
from tests.factories import Api  # noqa: E402
from tests.mariadb_server import create_database  # noqa: E402
from tests.processes import Servers  # noqa: E402

pytest_plugins = ["tests.mariadb_server", "tests.secrets_watch"]
T = TypeVar("T")
TABLES = ("sync_changes", "sync_access", "calendar_feeds", "records", "pet_members", "pets", "refresh_tokens",
          "sessions", "token_revocations", "login_failures", "users")


def test_config(**overrides: Any) -> Config:
    """The test profile with overrides, ignoring the caller's PET_API_* variables."""
    return load_config("test", overrides=overrides, environ={})


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a private loop (never asyncio.run(): it resets the test's current loop)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def migrate_database(url: str, **overrides: Any) -> None:
    """Apply every migration of the test profile's plugins (the core's included; `plugins=` overrides the
    profile's list) to the database at url."""
    config = test_config(database_url=url, **overrides)
    db = await connect(config)
    try:
        await migrate(db, load_plugins(config).migration_sources())
    finally:
        await db.close()


def migrated_database(server_url: str, name: str, **overrides: Any) -> str:
    """A fresh, migrated database on the server (profile overrides such as `plugins=` as in migrate_database);
    returns its URL."""
    url = create_database(server_url, name)
    run_async(migrate_database(url, **overrides))
    return url


@pytest.fixture(scope="session")
def mysql_url(mysql_server_url: str) -> str:
    """A migrated database on the session's MariaDB."""
    return migrated_database(mysql_server_url, "pet_api_test")


@pytest.fixture(scope="module")
def database(mysql_server_url: str, request: pytest.FixtureRequest) -> str:
    """A migrated database of the test module's own: pet_api_<module name without test_>."""
    module = request.module.__name__.rpartition(".")[2]
    return migrated_database(mysql_server_url, "pet_api_" + module.removeprefix("test_"))


@pytest.fixture
def servers(tmp_path: Path, database: str) -> Iterator[Servers]:
    """Real server processes on the module's database (`servers.start(workers=1, **env)`), stopped at teardown."""
    started = Servers(tmp_path, database)
    yield started
    started.stop_all()


@pytest.fixture(params=["mysql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the app uses; parametrize indirectly with ["mysql", "sqlite"] to run on both."""
    return request.param


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Override in a test module to change profile values."""
    return {}


@pytest.fixture
def config(request: pytest.FixtureRequest, backend: str, tmp_path: Any, config_overrides: dict[str, Any]) -> Config:
    url = request.getfixturevalue("mysql_url") if backend == "mysql" else f"sqlite:///{tmp_path}/pet.sqlite3"
    return test_config(**{"database_url": url, "auto_migrate": backend == "sqlite", **config_overrides})


async def _wipe(app: PetAPI) -> None:
    existing = {row[0] for row in await app.db.fetch_all(app.db.dialect.tables)}  # a disabled plugin's may be missing
    for table in TABLES:
        if table in existing:
            await app.db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names


@pytest.fixture
def app(io_loop: tornado.ioloop.IOLoop, config: Config) -> Iterator[PetAPI]:
    """The application from the factory, started; tables emptied first."""
    application = make_app(config)
    io_loop.run_sync(application.startup)
    io_loop.run_sync(lambda: _wipe(application))
    yield application
    io_loop.run_sync(application.shutdown)


@pytest.fixture
def http_server(request: pytest.FixtureRequest, io_loop: tornado.ioloop.IOLoop, _unused_port: Any,
                app: PetAPI) -> Any:
    """pytest-tornado's server, built with the same limits as production (connections.make_http_server)."""
    server = make_http_server(app, app.config)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)


@pytest.fixture
def api(http_client: AsyncHTTPClient, base_url: str) -> Api:
    """A JSON client aimed at the server under test."""
    return Api(http_client, base_url)
