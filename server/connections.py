"""Connection mechanics: the listening sockets (systemd's or our own), accepting one connection per wake-up,
the HTTP server with the profile's limits, a header timeout, and the graceful drain."""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import re
import socket
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import tornado.concurrent
import tornado.httpserver
import tornado.httputil
import tornado.ioloop
import tornado.netutil
import tornado.web

from server.config import Config
from server.errors import APIError, HTTPFailure, InvalidParameter
from server.handlers.base import NotFoundHandler
from server.internals import (
    answer_unparsable_requests,
    answering_streams,
    buffered_bytes,
    close_after_response,
    listen_on,
    open_connections,
    without_transforms,
)
from server.runtime import LISTEN_FDS_START, Runtime

if TYPE_CHECKING:
    from server.app import PetAPI

log = logging.getLogger("pet_api.serve")
BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
BODY_CAP = 16 * 1024 * 1024  # the least connection-level body cap (see make_http_server)
DRAIN_GRACE = 1.0  # seconds a connection accepted just before the drain gets to send its first request


class ListenError(Exception):
    """The profile's address cannot be listened on; the message is one line naming it and why."""


def listening_sockets(config: Config, runtime: Runtime) -> list[socket.socket]:
    """systemd's sockets when socket-activated, else our own on host:port; ListenError when the address is taken,
    unknown or not ours."""
    if runtime.listen_fds > 0:
        sockets = [socket.socket(fileno=fd) for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + runtime.listen_fds)]
        for sock in sockets:
            sock.setblocking(False)
            os.set_inheritable(sock.fileno(), False)
        return sockets
    reuse_port = config.workers != 1
    try:
        if reuse_port and config.port:
            _probe(config.host, config.port)
        return tornado.netutil.bind_sockets(config.port, config.host, reuse_port=reuse_port, backlog=BACKLOG)
    except OSError as exc:
        raise ListenError(f"cannot listen on {_address(config.host, config.port)}: {_why_not(exc)}") from None


def _probe(host: str, port: int) -> None:
    """Bind (and close) the address without SO_REUSEPORT first: OSError (address in use) when any socket is bound
    there, another instance's SO_REUSEPORT ones included, which the reuse_port bind would otherwise join in
    silence, splitting the connections between two instances. The workers of this one share the sockets bound
    after it."""
    for sock in tornado.netutil.bind_sockets(port, host, backlog=1):
        sock.close()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"


def _why_not(exc: OSError) -> str:
    """The reason a bind failed, in words an operator acts on."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (another process listens there)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no interface of this machine has that address"
    if exc.errno == errno.EACCES:
        return "permission denied (a port below 1024 needs privileges)"
    return exc.strerror or str(exc)


class _Connection:
    """What the server knows of one client connection: its current request and whether it is being served."""

    __slots__ = ("request", "busy", "served", "header_since")

    def __init__(self) -> None:
        self.request: Any = None  # tornado's HTTP1Connection of the current request
        self.busy = False  # headers received, response not finished
        self.served = False  # a request was answered before: the connection is kept alive
        self.header_since: float | None = None  # first header bytes seen (slow-header check)


class _TrackedRequest(tornado.httputil.HTTPMessageDelegate):
    """Marks the connection busy once the request's headers are in and refuses, before the application sees it,
    what HTTP framing forbids or what is over the connection's body cap; passes everything else on."""

    __slots__ = ("delegate", "server", "state", "line", "received")

    def __init__(self, delegate: tornado.httputil.HTTPMessageDelegate, server: PetHTTPServer,
                 state: _Connection) -> None:
        self.delegate = delegate
        self.server = server
        self.state = state
        self.line: tuple[str, str] | None = None  # method and path, once the delegate has the headers
        self.received = 0  # body bytes so far; -1 once refused

    def headers_received(self, start_line: Any, headers: tornado.httputil.HTTPHeaders) -> Awaitable[None] | None:
        start_line = normal_path(origin_form(start_line, headers))
        self.state.busy = True
        self.server.in_flight += 1
        if start_line.version == "HTTP/1.0" and "Transfer-Encoding" in headers:
            # RFC 9112 6.1: the framing of such a message is faulty (an HTTP/1.0 hop does not know chunked and
            # frames it otherwise: request smuggling); answered as any framing tornado cannot parse, then closed.
            raise tornado.httputil.HTTPInputError("Transfer-Encoding in an HTTP/1.0 request")
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.server.body_cap:  # refused before a byte of it is read
            self._refuse_body(start_line.method, start_line.path)
            return None
        if self.server.draining:
            close_after_response(self.state.request)
        self.line = (start_line.method, start_line.path)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.received < 0:
            return None
        self.received += len(chunk)
        if self.line is not None and self.received > self.server.body_cap:  # chunked: no length to refuse by
            self._refuse_body(*self.line)
            return None
        return self.delegate.data_received(chunk)

    def _refuse_body(self, method: str, path: str) -> None:
        self.received = -1
        self.server.refuse(self.state.request.stream, method, path,
                           HTTPFailure("request body is too large", status=413))

    def finish(self) -> None:
        if self.received >= 0:
            self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.line is not None:  # else the delegate never had the headers: it has nothing to end
            self.delegate.on_connection_close()


def origin_form(start_line: Any, headers: tornado.httputil.HTTPHeaders) -> Any:
    """A request target in absolute form (`GET http://host/v1/health`), which a server must accept (RFC 9112
    3.2.2), as its origin form (`/v1/health`), its authority replacing Host: tornado routes on the target as sent,
    so it matched no route."""
    target = getattr(start_line, "path", "")
    if not target[:8].lower().startswith(("http://", "https://")):
        return start_line
    parts = urllib.parse.urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if authority := parts.netloc.rpartition("@")[2]:  # never a userinfo (RFC 9110 4.2.4 forbids sending one)
        headers["Host"] = authority
    return start_line._replace(path=path)


_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def normal_path(start_line: Any) -> Any:
    """The target with the percent-encoded unreserved characters of its path decoded (`/v1/pets/%31` is
    `/v1/pets/1`): RFC 3986 6.2.2.2 and RFC 9110 4.2.3 make them the same URI, and tornado routes on the path as
    sent. Reserved ones (`%2F`, `%3F`, ...) stay encoded: decoding those would change what the path says."""
    path, mark, query = start_line.path.partition("?")
    if "%" not in path:
        return start_line
    decoded = _ESCAPE_RE.sub(lambda m: c if (c := chr(int(m.group(1), 16))) in _UNRESERVED else m.group(0), path)
    return start_line if decoded == path else start_line._replace(path=decoded + mark + query)


def _has_unread_bytes(stream: Any) -> bool:
    """Bytes of a next request already buffered by tornado or waiting in the kernel."""
    if buffered_bytes(stream):
        return True
    try:
        return bool(stream.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (OSError, AttributeError):  # nothing to read (EAGAIN), or the socket is already gone
        return False


def accept_one_per_wakeup(sock: socket.socket, callback: Callable[[socket.socket, Any], None]) -> Callable[[], None]:
    """tornado.netutil.add_accept_handler, but accepting one connection per readiness event instead of up to
    128: workers sharing a listening socket then split a burst of new connections between them. With
    tornado's batch, whichever worker woke first often took all the connections of a load test and the other
    idled."""
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

    def initialize(self, *args: Any, header_timeout: float = 10.0, body_cap: int = BODY_CAP, **kwargs: Any) -> None:
        # tornado's own cap answers a bare 400 (framing it "cannot parse"): left out of reach, ours answers 413.
        super().initialize(*args, **{**kwargs, "max_body_size": sys.maxsize})
        self.body_cap = body_cap
        self.in_flight = 0
        self.draining = False
        self.header_timeout = header_timeout
        self._conns: dict[Any, _Connection] = {}
        self._sweeper: tornado.ioloop.PeriodicCallback | None = None
        self._all_closed: asyncio.Event | None = None
        self._streams = answering_streams(self._malformed, self._too_large)

    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:  # tornado's, with accept_one_per_wakeup
            listen_on(self, sock, accept_one_per_wakeup)

    def handle_stream(self, stream: Any, address: tuple[Any, ...]) -> None:
        if self._sweeper is None:
            interval = min(1.0, self.header_timeout / 4)
            self._sweeper = tornado.ioloop.PeriodicCallback(self._close_slow_headers, interval * 1000)
            self._sweeper.start()
        answer_unparsable_requests(stream, self._streams)
        super().handle_stream(stream, address)

    @property
    def app(self) -> PetAPI:
        """The application this server answers for (make_http_server's)."""
        return self.request_callback  # type: ignore[return-value]

    def _malformed(self, header: bytes | None) -> bytes:
        """The error-shaped 400 for a request tornado could not parse."""
        return refusal(self.app, header, InvalidParameter("malformed HTTP request"))

    def refuse(self, stream: Any, method: str, path: str, error: APIError) -> None:
        """Answer a request the application has not seen (or no longer reads) with error and end the
        connection, reading and dropping what the client still sends, as for a header block too large."""
        _linger(stream.socket, answer_refused(self.app, method, path, error))
        stream.close()

    def _too_large(self, stream: Any, start: bytes) -> None:
        """431 for a header block over max_header_size (tornado closes the connection without a word): sent on a
        copy of the socket that then reads and drops what the client still sends, so that closing does not
        reset the connection before the client has read the answer."""
        answer = refusal(self.app, start, HTTPFailure("request header fields too large", status=431))
        _linger(stream.socket, answer)

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
        if not open_connections(self) and self._all_closed is not None:
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
            # A kept-alive connection with nothing sent is idle (idle_connection_timeout); a new one that has not
            # sent its first request yet is a client late with its header, bytes or none.
            if state.busy or state.served and not buffered_bytes(server_conn.stream):
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
                close_after_response(state.request)
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
            if open_connections(self):
                async with asyncio.timeout(deadline):
                    await self._all_closed.wait()
        except TimeoutError:
            log.warning("drain deadline passed; closing connections",
                        extra={"in_flight": self.in_flight, "connections": open_connections(self)})
            await self.close_all_connections()
            return False
        finally:
            grace.cancel()
        return True


def refusal(app: PetAPI, header: bytes | None, error: APIError) -> bytes:
    """The whole answer to a request HTTP itself could not take (the application never saw it), ending with
    "Connection: close": answered by the unknown-route handler's error path with the request line read from the
    header block when it is there and no headers (they were never read), so that it carries the headers, the request
    id, the access-log line and the metrics of every error answer, written in one place (BaseHandler,
    AccessLog.log_request)."""
    first_line, newline, _ = (header or b"").partition(b"\n")
    first = first_line.decode("latin-1").strip().split(" ") if newline else []
    method, path = (first[0], first[1]) if len(first) == 3 and first[1].startswith("/") else ("-", "-")
    return answer_refused(app, method, path, error)


def answer_refused(app: PetAPI, method: str, path: str, error: APIError) -> bytes:
    """refusal's answer for a request line already read (method and target)."""
    path = path.split("?", 1)[0]
    written = _Written()
    # HTTP/1.0: a request without headers needs no Host (tornado refuses an HTTP/1.1 one); the answer is 1.1.
    request = tornado.httputil.HTTPServerRequest(
        start_line=tornado.httputil.RequestStartLine(method, path, "HTTP/1.0"), connection=written)
    handler = NotFoundHandler(app, request)
    without_transforms(handler)
    handler.send_error(error.status, exc_info=(type(error), error, None))
    return b"".join(written.parts)


class _Written(tornado.httputil.HTTPConnection):
    """Where a refused request's handler writes its answer: the bytes, for the connection code to send."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        """RequestHandler sets one; this connection never closes under it."""

    def write_headers(self, start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
                      headers: tornado.httputil.HTTPHeaders, chunk: bytes | None = None) -> asyncio.Future[None]:
        assert isinstance(start_line, tornado.httputil.ResponseStartLine)
        lines = [f"HTTP/1.1 {start_line.code} {start_line.reason}",
                 *(f"{name}: {value}" for name, value in headers.get_all()), "Connection: close"]
        self.parts.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return self.write(chunk or b"")

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        self.parts.append(chunk)
        done: asyncio.Future[None] = tornado.concurrent.Future()
        done.set_result(None)
        return done

    def finish(self) -> None:
        """Nothing to end: the caller sends the answer and closes."""


LINGER_SECONDS = 2.0  # how long a refused connection's further input is read and dropped


def _linger(sock: socket.socket, answer: bytes) -> None:
    """Send `answer` on a copy of `sock` (its owner is about to close it), end our side, and read and drop the
    client's input until it closes or LINGER_SECONDS pass: closing with unread input would reset the
    connection and the client could lose the answer (nginx's lingering_close)."""
    try:
        copy = sock.dup()
        copy.setblocking(False)
    except OSError:
        return
    io_loop = tornado.ioloop.IOLoop.current()
    try:
        copy.send(answer)  # a few hundred bytes on a connection that has nothing else to send
        copy.shutdown(socket.SHUT_WR)
    except OSError:
        copy.close()
        return

    def done() -> None:
        io_loop.remove_handler(copy)
        timer.cancel()
        copy.close()

    def drop(fd: Any, events: int) -> None:
        try:
            chunk = copy.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            done()

    io_loop.add_handler(copy, drop, tornado.ioloop.IOLoop.READ)
    timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, done)


def make_http_server(app: tornado.web.Application, config: Config) -> PetHTTPServer:
    """The HTTP server with the profile's limits. Bodies over max_body_size are answered 413 by the
    handler (streamed, not held, the connection kept); the connection-level cap only stops a client that keeps
    sending: 413 too, with Connection: close, as soon as a declared Content-Length or the bytes received pass it.
    X-Real-IP / X-Forwarded-For are believed only when the profile trusts a proxy (xheaders)."""
    server = PetHTTPServer(
        app, xheaders=config.xheaders, body_cap=max(config.max_body_size * 4, BODY_CAP),
        max_header_size=config.max_header_size, idle_connection_timeout=config.idle_connection_timeout,
        body_timeout=config.body_timeout, header_timeout=config.header_timeout)
    metrics = getattr(app, "metrics", None)
    if metrics is not None:
        metrics.watch(server)
    return server
