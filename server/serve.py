"""Process life: one serving process (start, READY, watchdog beats, drain on SIGTERM, stop), the choice between
one process and supervised workers, and the exit codes of a start that cannot go on."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable, MutableMapping
from typing import Any

import tornado.ioloop

from server.app import DATABASE_ANSWERS, PendingMigrations, PetAPI, make_app
from server.config import Config
from server.connections import ListenError, listening_sockets, make_http_server
from server.db.migrations import STATEMENT_ERRORS, MigrationFailed, MigrationLockTimeout, server_error
from server.plugins import PluginError
from server.runtime import Runtime
from server.sdnotify import READY, STOPPING, WATCHDOG, Notifier, Report
from server.workers import STOP_SIGNALS, Supervisor, exit_code

log = logging.getLogger("pet_api.serve")
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


async def run_worker(config: Config, runtime: Runtime, sockets: list[socket.socket], report: Report,
                     beat_interval: float | None) -> int:
    """One serving process: open resources, report READY, beat, serve until SIGTERM/SIGINT/SIGHUP, drain, close."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[int] = []

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal: exiting without finishing the drain", extra={"signal": signum})
            os._exit(128 + signum)
        log.info("stopping: draining connections", extra={"signal": signum})
        stopped_by.append(signum)
        stop.set()

    for sig in STOP_SIGNALS:  # each drains; a second one exits at once
        loop.add_signal_handler(sig, on_signal, sig)
    app = make_app(config, runtime=runtime)
    if not await start_unless_stopped(app, stop):
        log.info("stopped during the start", extra={"worker": os.getpid()})
        return exit_code(stopped_by[0])
    server = make_http_server(app, config)
    server.add_sockets(sockets)
    log.info("serving", extra={"worker": os.getpid(),
                               "addresses": [str(s.getsockname()) for s in sockets]})
    report(READY)
    beat = None
    if beat_interval:
        def beat_once() -> None:
            report(WATCHDOG)

        beat = tornado.ioloop.PeriodicCallback(beat_once, beat_interval * 1000)
        beat.start()  # from the event loop itself: a blocked loop stops the beats
    await stop.wait()
    report(STOPPING)
    app.begin_drain()
    drained = await server.drain(config.shutdown_timeout)
    await app.shutdown()
    if beat is not None:
        beat.stop()
    log.info("stopped", extra={"worker": os.getpid(), "drained": drained})
    return exit_code(stopped_by[0])


async def start_unless_stopped(app: PetAPI, stop: asyncio.Event) -> bool:
    """app.startup(), given up when a stop signal comes first (a start may wait long: for the migration lock, for a
    plugin's on_start): False then, once the start has closed what it had opened. A failed start raises."""
    starting = asyncio.ensure_future(app.startup())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if starting.done():
        starting.result()
        return True
    starting.cancel()
    try:
        await starting
    except asyncio.CancelledError:
        return False
    await app.shutdown()  # it had finished when the cancellation came
    return False


def run_in_loop(config: Config, runtime: Runtime, sockets: list[socket.socket], report: Report,
                beat_interval: float | None) -> int:
    """Run one worker on a fresh (uvloop) event loop; start-up failures become exit codes."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner: Callable[[Any], int] = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(run_worker(config, runtime, sockets, report, beat_interval))
    except START_FAILURES as exc:
        return start_failure(exc, database_url=config.database_url)


# What stops a start with one line and an exit code (start_failure), not a traceback.
START_FAILURES = (*DATABASE_ANSWERS, PluginError, ListenError)


# The failures whose own text is the line, with their exit codes (README "Command line").
SAID_AS_IS: tuple[tuple[type[Exception], int], ...] = (
    (PluginError, 2), (PendingMigrations, 3), (MigrationFailed, 5), (MigrationLockTimeout, 6), (ListenError, 7))


def start_failure(exc: Exception, command: str = "pet-api", *, during: str = " at start-up",
                  database_url: str | None = None) -> int:
    """One line on stderr, `<command>: ...`, and the exit code for a start (or `migrate`, `create-admin`: during=""
    and the database_url to name, without its credentials) that cannot go on: 3 schema behind, 4 no database, 5 the
    database refused a statement (a missing privilege, a schema changed by hand; a migration, named as `migrate`
    names it), 6 another migrate held the migration lock, 7 the address cannot be listened on; 2 a plugin that
    cannot be used (its setup, on_start or after_migrate raised), as for a misconfigured one."""
    for kind, code in SAID_AS_IS:
        if isinstance(exc, kind):
            print(f"{command}: {exc}", file=sys.stderr)
            return code
    if isinstance(exc, STATEMENT_ERRORS):
        print(f"{command}: the database refused a statement{during}: {server_error(exc)}", file=sys.stderr)
        return 5
    from server.db.mysql import why_unreachable
    from server.logs import shown_url

    where = "" if database_url is None else f" at {shown_url(database_url)}"
    print(f"{command}: the database{where} is unreachable{during}: {why_unreachable(exc)}", file=sys.stderr)
    return 4


def export_metrics_dir(environ: MutableMapping[str, str], path: str | None) -> None:
    """The one write to the environment. prometheus_client takes its multiprocess directory from
    PROMETHEUS_MULTIPROC_DIR only (read when it is imported, to choose how values are stored, and whenever a
    value is created), so the directory of this run goes into the environment the workers inherit; one process
    drops an inherited one (its own registry, no stale files to sum). Must run before prometheus_client is
    imported."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics mode was chosen")
    if path is None:
        environ.pop(METRICS_DIR_VARIABLE, None)
    else:
        environ[METRICS_DIR_VARIABLE] = path


def serve(config: Config, environ: MutableMapping[str, str]) -> int:
    """The serving process's entry point: read the runtime from `environ` (os.environ) once, bind or inherit
    the sockets, serve in this process (workers=1) or supervise workers. The exit code."""
    runtime = Runtime.from_environ(environ)
    try:
        sockets = listening_sockets(config, runtime)
    except ListenError as exc:
        return start_failure(exc)
    workers = config.workers or len(os.sched_getaffinity(0))
    if workers > 1:
        with tempfile.TemporaryDirectory(prefix="pet-api-metrics-", ignore_cleanup_errors=True) as metrics_dir:
            export_metrics_dir(environ, metrics_dir)
            runtime = dataclasses.replace(runtime, metrics_dir=metrics_dir)
            return Supervisor(config, runtime, sockets, workers, run_in_loop).run()
    export_metrics_dir(environ, None)
    notifier = Notifier(runtime.notify_socket, ready_status=f"serving, pid {os.getpid()}")
    interval = runtime.watchdog_timeout / 2 if runtime.watchdog_timeout else None
    try:
        return run_in_loop(config, runtime, sockets, notifier.report, interval)
    finally:
        notifier.close()
