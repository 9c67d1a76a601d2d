"""The application factory and its life cycle (open the database, start plugins, stop them)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import tornado.web
from pydantic import BaseModel

from server.auth import TokenSigner
from server.changes import Changes
from server.config import Config
from server.db import Database, connect
from server.db.migrations import STATEMENT_ERRORS, MigrationFailed, MigrationLockTimeout, Source, migrate, pending
from server.errors import ServiceUnavailable
from server.handlers.base import NotFoundHandler, ResponseHeaders
from server.idempotency import IdempotencyKeys
from server.logs import AccessLog
from server.passwords import Passwords
from server.plugins import Plugin, PluginError, SecretPaths, one_line, operations
from server.rbac import RoleMap
from server.registry import PluginSet, load_plugins
from server.runtime import Runtime
from server.services.revocations import RevocationCache

if TYPE_CHECKING:
    import asyncio

    from server.openapi import ApiDocument
    from server.plugins.accounts.services.accounts import Accounts
    from server.plugins.pets.views import PetViews
    from server.plugins.photos.services import Photos
    from server.plugins.sync.cursor import Cursors
    from server.plugins.sync.hub import EventHub
    from server.plugins.sync.sequencer import Sequencer

log = logging.getLogger("pet_api")


class PendingMigrations(RuntimeError):
    """prod does not start on a schema older than the code."""


# The database's answers (3 schema behind, 4 outage, 5 refused, 6 lock held): they keep their own exit codes, also
# when they come through a plugin's hook.
DATABASE_ANSWERS = (PendingMigrations, MigrationFailed, MigrationLockTimeout, ServiceUnavailable, *STATEMENT_ERRORS)


@contextlib.contextmanager
def plugin_hook(plugin: str, hook: str) -> Iterator[None]:
    """Turn a plugin's own bug in one of its hooks (setup, on_start, after_migrate) into PluginError("plugin 'x':
    <hook> failed: <error>"), one line as for a plugin that fails to import (exit 2)."""
    try:
        yield
    except DATABASE_ANSWERS:
        raise
    except Exception as exc:
        raise PluginError(f"plugin {plugin!r}: {hook} failed: {one_line(exc)}") from exc


async def require_current(db: Database, config: Config, sources: Sequence[Source]) -> None:
    """Raise PendingMigrations, naming them (plugin and file) and the command to apply them, when the schema is
    behind the code of the core or of an enabled plugin."""
    todo = await pending(db, sources)
    if todo:
        names = ", ".join(m.label for m in todo)
        raise PendingMigrations(f"database schema is behind: pending migrations {names}; "
                                f"run 'python main.py migrate --env={config.env}' first")


class PetAPI(tornado.web.Application):
    """The Tornado application; config and shared resources hang off it."""

    accounts: Accounts  # set by the accounts plugin's setup
    api_document: ApiDocument  # set by the core plugin's setup
    sync_cursors: Cursors  # set by the sync plugin's setup
    events: EventHub  # set by the sync plugin's setup
    sync_sequencer: Sequencer  # set by the sync plugin's setup
    sync_purge: asyncio.Task[None] | None = None  # started by the sync plugin
    accounts_purge: asyncio.Task[None] | None = None  # started by the accounts plugin
    pet_views: PetViews  # set by the pets plugin's setup
    photos: Photos  # set by the photos plugin's setup

    def __init__(self, config: Config, plugin_set: PluginSet, db: Database | None = None,
                 runtime: Runtime | None = None) -> None:
        self.config = config
        self.runtime = runtime or Runtime()
        self.plugin_set = plugin_set
        self.plugins = plugins = plugin_set.plugins
        self.plugin_settings: dict[str, BaseModel] = plugin_set.settings  # name -> its validated settings
        self.error_catalog = plugin_set.catalog  # core's and the enabled plugins' error classes
        self.db: Database = db  # type: ignore[assignment]  # opened by startup() when not given
        self.started: list[Plugin] = []  # the plugins whose on_start has run (or who have none): stopped at shutdown
        self.tokens = TokenSigner(config.signing_keys, token_expiration=config.token_expiration)
        self.revocations = RevocationCache(refresh_seconds=config.revocation_refresh_seconds,
                                           token_expiration=config.token_expiration)
        self.roles = RoleMap(config.roles, url=config.rbac_url, refresh_seconds=config.rbac_refresh_seconds)
        self.passwords = Passwords(time_cost=config.password_hash_time_cost,
                                   memory_kib=config.password_hash_memory_kib,
                                   max_queued=config.password_hash_max_queued, retry_after=config.retry_after)
        self.idempotency = IdempotencyKeys(retention_seconds=config.idempotency_retention_seconds)
        self.changes = Changes()  # plugins listen in their setup
        self.metrics: Any = None  # set by the metrics plugin
        self.access_log = AccessLog()
        self.response_headers = ResponseHeaders()
        handlers = [tornado.web.url(route.pattern, route.handler, {"route": route.template, "secret": route.secret})
                    for plugin in plugins for route in plugin.routes]
        self.secret_paths = SecretPaths.of(route for plugin in plugins for route in plugin.routes)
        super().__init__(handlers, default_handler_class=NotFoundHandler, log_function=self.access_log.log_request,
                         compress_response=False, debug=False, autoreload=False, serve_traceback=False)
        for plugin in plugins:
            if plugin.setup is not None:
                with plugin_hook(plugin.name, "setup"):
                    plugin.setup(self)

    def route_table(self) -> list[tuple[str, str, Any, str]]:
        """(path, method, handler function, plugin) for every mounted operation."""
        return [(path, method, fn, plugin.name) for plugin in self.plugins for path, method, fn in operations(plugin)]

    async def startup(self) -> None:
        """Open the database, check (or in dev apply) migrations, start background work and plugins. A start that
        fails or is cancelled (a stop signal) first closes what it opened: the embedded database's thread would
        keep the process from exiting."""
        try:
            await self._start()
        except BaseException:
            try:
                await self.shutdown()
            except Exception as exc:  # the start's own error is the one to report
                log.warning("closing after a failed start: %s", one_line(exc))
            raise

    async def _start(self) -> None:
        if self.db is None:
            self.db = await connect(self.config)
        sources = self.plugin_set.migration_sources()
        if not self.config.auto_migrate:
            await require_current(self.db, self.config, sources)
        elif await pending(self.db, sources):
            for m in await migrate(self.db, sources):
                log.info("%s migration %s", "recorded (tables already there)" if m.adopted else "applied", m.label)
        await self.revocations.refresh(self.db)
        self.revocations.start(self.db)
        self.idempotency.start(self.db)
        await self.roles.fetch()
        self.roles.declare(frozenset(self.plugin_set.scopes))
        self.roles.start()
        for plugin in self.plugins:
            if plugin.on_start is not None:
                with plugin_hook(plugin.name, "on_start"):
                    await plugin.on_start(self)
            self.started.append(plugin)

    def begin_drain(self) -> None:
        """The drain begins (SIGTERM): plugins end their long-lived responses (event streams) at once, so their
        clients reconnect elsewhere while the requests in flight finish."""
        for plugin in self.plugins:
            if plugin.on_drain is not None:
                plugin.on_drain(self)

    async def shutdown(self) -> None:
        """Stop the started plugins and background work, then close the database (also when a step before it
        failed)."""
        try:
            while self.started:
                plugin = self.started.pop()
                if plugin.on_stop is not None:
                    await plugin.on_stop(self)
            await self.roles.stop()
            await self.revocations.stop()
            await self.idempotency.stop()
        finally:
            self.passwords.close()
            if self.db is not None:
                await self.db.close()


def make_app(config: Config, *, db: Database | None = None, runtime: Runtime | None = None) -> PetAPI:
    """Build the application for a validated config and its process's runtime (default: a plain process);
    nothing is opened until startup()."""
    return PetAPI(config, load_plugins(config), db, runtime)
