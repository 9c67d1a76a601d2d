"""Running the server: sockets (systemd's or our own), the HTTP server with its limits and graceful drain,
one worker's life (start, READY, watchdog, drain on SIGTERM), and the choice between one process and workers."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.ioloop
import tornado.netutil
import tornado.web

from server.config import Config
from server.sdnotify import Notifier

log = logging.getLogger("pet_api.serve")
LISTEN_FDS_START = 3  # sd_listen_fds(3)
BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
DRAIN_GRACE = 1.0  # seconds a connection accepted just before the drain gets to send its first request

Report = Callable[[str], None]  # "READY", "WATCHDOG", "STOPPING": to systemd, or to the supervisor


def listening_sockets(config: Config, environ: Any = None) -> list[socket.socket]:
    """systemd's sockets (LISTEN_FDS) when socket-activated, else our own on host:port."""
    env = os.environ if environ is None else environ
    count = int(env.get("LISTEN_FDS", "0") or 0)
    if env.get("LISTEN_PID") == str(os.getpid()) and count > 0:
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(key, None)  # consumed: children and workers must not take them again
        sockets = [socket.socket(fileno=fd) for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + count)]
        for sock in sockets:
            sock.setblocking(False)
            os.set_inheritable(sock.fileno(), False)
        return sockets
    return tornado.netutil.bind_sockets(config.port, config.host, reuse_port=config.workers != 1, backlog=BACKLOG)


class _Connection:
    """What the server knows of one client connection: its current request and whether it is being served."""

    __slots__ = ("request", "busy", "served", "header_since")

    def __init__(self) -> None:
        self.request: Any = None  # tornado's HTTP1Connection of the current request
        self.busy = False  # headers received, response not finished
        self.served = False  # a request was answered before: the connection is kept alive
        self.header_since: float | None = None  # first header bytes seen (slow-header check)


class _TrackedRequest(tornado.httputil.HTTPMessageDelegate):
    """Marks the connection busy once the request's headers are in; passes everything on."""

    __slots__ = ("delegate", "server", "state")

    def __init__(self, delegate: tornado.httputil.HTTPMessageDelegate, server: PetHTTPServer,
                 state: _Connection) -> None:
        self.delegate = delegate
        self.server = server
        self.state = state

    def headers_received(self, start_line: Any, headers: tornado.httputil.HTTPHeaders) -> Awaitable[None] | None:
        self.state.busy = True
        self.server.in_flight += 1
        if self.server.draining:
            _close_after_response(self.state.request)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()


def _close_after_response(request_conn: Any) -> None:
    # tornado's own keep-alive decision: it then sends "Connection: close" and closes after the response.
    request_conn._disconnect_on_finish = True


def _has_unread_bytes(stream: Any) -> bool:
    """Bytes of a next request already buffered by tornado or waiting in the kernel."""
    if getattr(stream, "_read_buffer_size", 0):
        return True
    try:
        return bool(stream.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (OSError, AttributeError):  # nothing to read (EAGAIN), or the socket is already gone
        return False


def accept_one_per_wakeup(sock: socket.socket, callback: Callable[[socket.socket, Any], None]) -> Callable[[], None]:
    """tornado.netutil.add_accept_handler, but accepting one connection per readiness event instead of up to
    128: workers sharing a listening socket then split a burst of new connections between them. With
    tornado's batch, whichever worker woke first often took all 64 connections of a load test and the other
    idled (health: 5.5k-11k req/s from run to run; one at a time: 9.4k-12k)."""
    io_loop = tornado.ioloop.IOLoop.current()
    removed = False

    def on_readable(fd: Any, events: int) -> None:
        if removed:
            return
        try:
            connection, address = sock.accept()
        except (BlockingIOError, ConnectionAbortedError):  # taken by another worker, or gone already
            return
        callback(connection, address)

    def remove() -> None:
        nonlocal removed
        io_loop.remove_handler(sock)
        removed = True

    io_loop.add_handler(sock, on_readable, tornado.ioloop.IOLoop.READ)
    return remove


class PetHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server plus what operations need: requests in flight, a graceful drain, and a header
    timeout distinct from the idle keep-alive timeout (tornado counts idle time as header time)."""

    def initialize(self, *args: Any, header_timeout: float = 10.0, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.in_flight = 0
        self.draining = False
        self.header_timeout = header_timeout
        self._conns: dict[Any, _Connection] = {}
        self._sweeper: tornado.ioloop.PeriodicCallback | None = None
        self._all_closed: asyncio.Event | None = None

    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:  # tornado's, with accept_one_per_wakeup
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = accept_one_per_wakeup(sock, self._handle_connection)

    def handle_stream(self, stream: Any, address: tuple) -> None:
        if self._sweeper is None:
            interval = min(1.0, self.header_timeout / 4)
            self._sweeper = tornado.ioloop.PeriodicCallback(self._close_slow_headers, interval * 1000)
            self._sweeper.start()
        super().handle_stream(stream, address)

    def start_request(self, server_conn: Any, request_conn: Any) -> tornado.httputil.HTTPMessageDelegate:
        state = self._conns.get(server_conn)
        if state is None:
            state = self._conns[server_conn] = _Connection()
        elif state.busy:  # the previous request on this connection is answered
            state.busy = False
            state.served = True
            self.in_flight -= 1
        state.request = request_conn
        state.header_since = None
        if self.draining and state.served and not _has_unread_bytes(server_conn.stream):
            server_conn.stream.close()  # kept alive, idle, and we are going away
        return _TrackedRequest(super().start_request(server_conn, request_conn), self, state)

    def on_close(self, server_conn: Any) -> None:
        state = self._conns.pop(server_conn, None)
        if state is not None and state.busy:
            self.in_flight -= 1
        super().on_close(server_conn)
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()

    def stop(self) -> None:
        """Stop accepting (the listening sockets are closed; systemd keeps its copy) and the timers."""
        super().stop()
        if self._sweeper is not None:
            self._sweeper.stop()

    def _close_slow_headers(self) -> None:
        now = time.monotonic()
        slow = []
        for server_conn, state in self._conns.items():
            if state.busy or not getattr(server_conn.stream, "_read_buffer_size", 0):
                continue
            if state.header_since is None:
                state.header_since = now
            elif now - state.header_since >= self.header_timeout:
                slow.append(server_conn.stream)
        for stream in slow:
            stream.close()

    def _close_idle(self, *, kept_alive_only: bool) -> None:
        for server_conn, state in list(self._conns.items()):
            if state.busy:
                _close_after_response(state.request)
            elif (state.served or not kept_alive_only) and not _has_unread_bytes(server_conn.stream):
                server_conn.stream.close()

    async def drain(self, deadline: float) -> bool:
        """Stop accepting; answer in-flight requests with "Connection: close"; close idle connections; wait up
        `deadline` seconds for every connection to end, then cut the rest. True when nothing had to be cut."""
        self.stop()
        self.draining = True
        self._all_closed = asyncio.Event()
        self._close_idle(kept_alive_only=True)
        loop = asyncio.get_running_loop()
        grace = loop.call_later(min(DRAIN_GRACE, deadline), functools.partial(self._close_idle, kept_alive_only=False))
        try:
            if self._connections:
                async with asyncio.timeout(deadline):
                    await self._all_closed.wait()
        except TimeoutError:
            log.warning("drain deadline passed; closing connections",
                        extra={"in_flight": self.in_flight, "connections": len(self._connections)})
            await self.close_all_connections()
            return False
        finally:
            grace.cancel()
        return True


def make_http_server(app: tornado.web.Application, config: Config) -> PetHTTPServer:
    """The HTTP server with the profile's limits. Bodies over max_body_size are answered 413 by the
    handler (streamed, not held); the connection-level cap only stops a client that keeps sending.
    X-Real-IP / X-Forwarded-For are believed only when the profile trusts a proxy (xheaders)."""
    server = PetHTTPServer(
        app, xheaders=config.xheaders, max_body_size=max(config.max_body_size * 4, 16 * 1024 * 1024),
        max_header_size=config.max_header_size, idle_connection_timeout=config.idle_connection_timeout,
        body_timeout=config.body_timeout, header_timeout=config.header_timeout)
    metrics = getattr(app, "metrics", None)
    if metrics is not None:
        metrics.watch(server)
    return server


async def run_worker(config: Config, sockets: list[socket.socket], report: Report,
                     beat_interval: float | None) -> int:
    """One serving process: open resources, report READY, beat, serve until SIGTERM/SIGINT, drain, close."""
    from server.app import make_app

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal: exiting without finishing the drain", extra={"signal": signum})
            os._exit(128 + signum)
        log.info("stopping: draining connections", extra={"signal": signum})
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    app = make_app(config)
    await app.startup()
    server = make_http_server(app, config)
    server.add_sockets(sockets)
    log.info("serving", extra={"worker": os.getpid(),
                               "addresses": [str(s.getsockname()) for s in sockets]})
    report("READY")
    beat = None
    if beat_interval:
        beat = tornado.ioloop.PeriodicCallback(lambda: report("WATCHDOG"), beat_interval * 1000)
        beat.start()  # from the event loop itself: a blocked loop stops the beats
    await stop.wait()
    report("STOPPING")
    drained = await server.drain(config.shutdown_timeout)
    await app.shutdown()
    if beat is not None:
        beat.stop()
    log.info("stopped", extra={"worker": os.getpid(), "drained": drained})
    return 0


def run_in_loop(config: Config, sockets: list[socket.socket], report: Report, beat_interval: float | None) -> int:
    """Run one worker on a fresh (uvloop) event loop; start-up failures become exit codes."""
    from server.app import PendingMigrations
    from server.errors import ServiceUnavailable

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner: Callable[[Any], int] = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(run_worker(config, sockets, report, beat_interval))
    except (PendingMigrations, ServiceUnavailable) as exc:
        return start_failure(exc)


def start_failure(exc: Exception) -> int:
    """One line on stderr and the exit code for a start that cannot go on: 3 schema behind, 4 no database."""
    from server.app import PendingMigrations  # imported late, as in serve_one: metrics settings come first

    if isinstance(exc, PendingMigrations):
        print(f"pet-api: {exc}", file=sys.stderr)
        return 3
    print("pet-api: the database is unreachable at start-up", file=sys.stderr)
    return 4


def serve(config: Config) -> int:
    """Bind (or inherit) the sockets; serve in this process (workers=1) or supervise workers. Exit code."""
    sockets = listening_sockets(config)
    workers = config.workers or len(os.sched_getaffinity(0))
    if workers > 1:
        from server.workers import Supervisor

        return Supervisor(config, sockets, workers, run_in_loop).run()
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process: its own registry, no stale files to sum
    notifier = Notifier()
    messages = {"READY": ("READY=1", f"STATUS=serving, pid {os.getpid()}", f"MAINPID={os.getpid()}"),
                "WATCHDOG": ("WATCHDOG=1",), "STOPPING": ("STOPPING=1", "STATUS=draining")}
    interval = notifier.watchdog_timeout / 2 if notifier.watchdog_timeout else None
    try:
        return run_in_loop(config, sockets, lambda what: notifier.send(*messages[what]), interval)
    finally:
        notifier.close()
