"""An event stream once the hub holds it: no request handler, coroutine or tornado IOStream, but a small record of
its socket (taken from tornado once the handler has written the head and first page), its token and its position.
The hub writes it directly; what the socket does not take waits in the stream's backlog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
from collections.abc import Callable

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream

from server.auth import Principal
from server.plugins.sync.cursor import Position

log = logging.getLogger("pet_api.sync")
WRITE_BUFFER_LIMIT = 1 << 20  # bytes a client may leave unread (a stream waits for it to read before its next page)
LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """`data` as one HTTP/1.1 chunk (a stream to an HTTP/1.1 client is chunked; an HTTP/1.0 one is the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Stream:
    """One open event stream: its socket, whose token, where it stands."""

    __slots__ = ("backlog", "chunked", "gone", "language", "pending", "position", "request", "sock", "user")

    def __init__(self, conn: IOStream, user: Principal, position: Position, *, chunked: bool, language: str,
                 request: str, gone: Callable[[Stream], None]) -> None:
        self.sock = take_socket(conn)
        self.user = user
        self.position = position
        self.chunked = chunked
        self.language = language  # of the error event
        self.request = request  # "GET /v1/events", for the error event
        self.gone = gone  # called when the client leaves or cannot keep up (one callable for every stream)
        self.pending = False  # the log may hold something for it: read a page
        self.backlog = b""  # written, not yet taken by the socket (the client reads slowly)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def send(self, data: bytes) -> None:
        """Send what the socket takes now; keep the rest and send it when the socket can take more."""
        if self.backlog:
            if len(self.backlog) + len(data) > WRITE_BUFFER_LIMIT:  # it reads nothing: cut (it resumes later)
                self.gone(self)
            else:
                self.backlog += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the client is gone
            self.gone(self)
            return
        if sent < len(data):
            self.backlog = data[sent:]
            asyncio.get_running_loop().add_writer(self.sock.fileno(), self._writable)

    def finish(self, tail: bytes) -> None:
        """The end of the body (an error event before it, if any), then close. A client so far behind that its
        backlog is not empty misses the end: it reconnects all the same."""
        if self.chunked:
            tail = (chunk(tail) if tail else b"") + LAST_CHUNK
        if tail and not self.backlog:
            with contextlib.suppress(OSError):
                self.sock.send(tail)
        self.close()

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.sock.fileno())
        if self.backlog:
            loop.remove_writer(self.sock.fileno())
        self.sock.close()

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self.backlog)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.gone(self)
            return
        self.backlog = self.backlog[sent:]
        if not self.backlog:
            asyncio.get_running_loop().remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        """The client sends nothing more after its request: the end of its input is its leaving."""
        try:
            data = self.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.gone(self)


def take_socket(conn: IOStream) -> socket.socket:
    """The socket of a connection tornado has finished with (detached, its writes flushed), out of tornado's IOLoop:
    the IOStream, its buffers (two deques, 1.5 KiB), its futures and the request's header block it holds are
    freed. Plain sockets only: TLS ends in front of the server (nginx)."""
    if isinstance(conn, SSLIOStream):
        raise TypeError("event streams are served over plain sockets")
    sock = conn.socket
    IOLoop.current().remove_handler(sock)
    return sock


def raise_descriptor_limit() -> int:
    """Raise this process' soft limit of open files to the hard one: each event stream holds a descriptor, and
    distributions start services with 1,024. The soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # pragma: no cover - a hard limit the kernel refuses (nr_open)
            log.warning("cannot raise the open files limit", extra={"soft": soft, "hard": hard, "error": str(exc)})
            return soft
        return hard
    return soft
