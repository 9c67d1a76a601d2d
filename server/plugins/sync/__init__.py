"""Live sync (issue 15): the change log, GET /v1/sync with opaque cursors, and GET /v1/events (server-sent events)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, cast

from server import periodic
from server.changes import Change
from server.plugins import Plugin, Route
from server.plugins.sync.cursor import Cursors
from server.plugins.sync.handlers import EventsHandler, SyncHandler
from server.plugins.sync.hub import EventHub
from server.plugins.sync.models import SyncSettings
from server.plugins.sync.sequencer import Sequencer
from server.plugins.sync.services import purge_changes, record_change
from server.services import utcnow

if TYPE_CHECKING:
    from server.app import PetAPI
    from server.db import Executor

log = logging.getLogger("pet_api.sync")
PURGE_EVERY = 600.0  # seconds between purges of entries older than sync_retention_days


def _settings(app: PetAPI) -> SyncSettings:
    return cast(SyncSettings, app.plugin_settings["sync"])


def _setup(app: PetAPI) -> None:
    settings = _settings(app)
    sequencer = app.sync_sequencer = Sequencer()

    async def log_change(tx: Executor, change: Change) -> None:
        if await record_change(tx, change):
            tx.after_commit(sequencer.nudge)

    app.changes.listen(log_change)
    app.sync_cursors = Cursors(app.config.signing_keys)
    app.events = EventHub(poll_seconds=settings.events_poll_seconds,
                          heartbeat_seconds=settings.events_heartbeat_seconds)


async def _start(app: PetAPI) -> None:
    retention = dt.timedelta(days=_settings(app).sync_retention_days)
    app.sync_sequencer.start(app.db)
    await app.events.start(app.db, app.revocations)
    app.sync_purge = periodic.start_every(
        lambda: PURGE_EVERY, lambda: purge_changes(app.db, before=utcnow() - retention),
        periodic.warn_failed(log, "sync purge"))


async def _stop(app: PetAPI) -> None:
    await periodic.stop(app.sync_purge)
    await app.events.stop()
    await app.sync_sequencer.stop()


def _drain(app: PetAPI) -> None:
    app.events.close_all()


PLUGIN = Plugin(
    name="sync",
    routes=[Route("/v1/sync", SyncHandler), Route("/v1/events", EventsHandler)],
    setup=_setup,
    on_start=_start,
    on_stop=_stop,
    on_drain=_drain,
    requires=("pets",),  # the pets' memberships say who is told; records are synced when that plugin is enabled
    settings=SyncSettings,
)
