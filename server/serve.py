"""Running the server: sockets (own or systemd's), worker processes, readiness and graceful drain."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import tornado.httpserver
import tornado.netutil
import tornado.process
import tornado.web

from server.app import make_app
from server.config import Config

log = logging.getLogger("pet_api.serve")


def listening_sockets(config: Config) -> list[socket.socket]:
    """systemd's sockets (LISTEN_FDS) when socket-activated, else our own on host:port."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS", "0")) > 0:
        count = int(os.environ["LISTEN_FDS"])
        sockets = [socket.socket(fileno=fd) for fd in range(3, 3 + count)]
        for sock in sockets:
            sock.setblocking(False)
        return sockets
    return tornado.netutil.bind_sockets(config.port, config.host, reuse_port=config.workers != 1, backlog=1024)


def make_http_server(app: tornado.web.Application, config: Config) -> tornado.httpserver.HTTPServer:
    """The HTTP server with the profile's limits. Bodies over max_body_size are answered 413 by the
    handler (streamed, not held); the connection-level cap only stops a client that keeps sending."""
    return tornado.httpserver.HTTPServer(
        app, xheaders=False, max_body_size=max(config.max_body_size * 4, 16 * 1024 * 1024),
        max_header_size=config.max_header_size, idle_connection_timeout=config.idle_connection_timeout,
        body_timeout=config.body_timeout)


async def run_worker(config: Config, sockets: list[socket.socket]) -> None:
    """One worker: open resources, serve until SIGTERM/SIGINT, drain, close."""
    app = make_app(config)
    await app.startup()
    server = make_http_server(app, config)
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving", extra={"worker": os.getpid()})
    await stop.wait()
    server.stop()
    try:
        async with asyncio.timeout(config.shutdown_timeout):
            await server.close_all_connections()
    except TimeoutError:
        log.warning("drain deadline passed; closing remaining connections")
    await app.shutdown()


def serve(config: Config) -> None:
    """Bind (or inherit) the sockets, fork workers when asked, run the event loop in each."""
    sockets = listening_sockets(config)
    workers = config.workers if config.workers > 0 else os.cpu_count() or 1
    if workers > 1:
        tornado.process.fork_processes(workers)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(run_worker(config, sockets))
    else:
        uvloop.run(run_worker(config, sockets))
