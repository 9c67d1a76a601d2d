"""Every use of a private attribute of tornado, aiomysql or prometheus_client, in one place (tests/test_internals.py
checks each one against the installed release; pyproject.toml caps each below its next minor version). Each one buys
something measured or something the library's public API cannot do: the drain and the header timeout need to see and end
connections, accepting one connection per wake-up replaces tornado's accept loop, and the pool must see an idle
MariaDB connection that the server has closed before lending it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import aiomysql
import tornado.web
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders
from tornado.iostream import IOStream, UnsatisfiableReadError
from tornado.tcpserver import TCPServer


def close_after_response(request_conn: HTTP1Connection) -> None:
    """Make tornado end this connection after the response being written, with "Connection: close" (tornado's
    own keep-alive decision; it has no public setter)."""
    request_conn._disconnect_on_finish = True


def buffered_bytes(stream: IOStream) -> int:
    """Bytes tornado has read from the socket and not yet parsed (a next request, or a header in progress)."""
    return stream._read_buffer_size


def open_connections(server: HTTPServer) -> int:
    """How many connections the HTTP server still holds (close_all_connections is the only public use)."""
    return len(server._connections)


def listen_on(server: TCPServer, sock: socket.socket,
              start_accepting: Callable[[socket.socket, Callable[[socket.socket, Any], None]], Callable[[], None]],
              ) -> None:
    """TCPServer.add_sockets with our own accept handler: start_accepting(sock, handle_connection) returns the
    function that stops it, and server.stop() calls it and closes the socket as for tornado's own."""
    server._sockets[sock.fileno()] = sock
    server._handlers[sock.fileno()] = start_accepting(sock, server._handle_connection)


def closed_by_server(conn: aiomysql.Connection) -> bool:
    """Whether the server has ended this idle aiomysql connection (wait_timeout, a restart, KILL): its stream
    reader saw the end or an error. aiomysql's own pool reads the same private reader; it has no public test."""
    reader = conn._reader
    return bool(reader.at_eof() or reader.exception() is not None or reader.eof_received)


def response_header(handler: tornado.web.RequestHandler, name: str) -> str | None:
    """A header the handler has set on its response so far, or None (tornado has setters only): the answer
    stored for an Idempotency-Key replays its Location and ETag."""
    headers = handler._headers
    return headers[name] if name in headers else None  # noqa: SIM401 - HTTPHeaders.get raises and catches


def reset_response(handler: tornado.web.RequestHandler, headers: list[tuple[str, str]]) -> None:
    """RequestHandler.clear() with the response's first headers given whole, their names already in tornado's
    Http-Header-Case and their values checked (see ResponseHeaders): tornado's sets them one by one, checking and
    normalizing each, and formats a Date for every response."""
    fresh = HTTPHeaders.__new__(HTTPHeaders)
    fresh._as_list = {name: [value] for name, value in headers}
    fresh._combined_cache = dict(headers)
    handler._headers = fresh
    handler._write_buffer = []
    handler._status_code = 200
    handler._reason = "OK"


def without_transforms(handler: tornado.web.RequestHandler) -> None:
    """Let a handler built outside tornado's routing write its answer: tornado sets its output transforms (none are
    configured here) when it runs the request (RequestHandler._execute), and flush() reads them."""
    handler._transforms = []


def histogram_buckets(histogram: Any) -> tuple[list[float], list[Any], Any]:
    """A prometheus_client histogram child's upper bounds, the value of each bucket (one per bound, not cumulative)
    and the value of its sum: what its observe() adds to, for adding many observations at once (it has no public
    way to)."""
    return histogram._upper_bounds, histogram._buckets, histogram._sum


TORNADO_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"  # what http1connection writes for a message it cannot parse


class AnsweringStream(IOStream):
    """An IOStream that answers what tornado refuses without a word (see answering_streams). The hooks are the
    class's (one subclass per server); the stream itself gains one attribute, the last header read: an IOStream
    already has 27, and once CPython's key-sharing instance dicts pass their limit each idle connection would
    carry a 1.3 KiB dict of its own."""

    _pet_header: Any  # False before the first header read, None while one is starting, then its future

    @staticmethod
    def answer(header: bytes | None) -> bytes:
        raise NotImplementedError

    @staticmethod
    def too_large(stream: IOStream, start: bytes) -> None:
        raise NotImplementedError

    def read_until_regex(self, regex: bytes, max_bytes: int | None = None) -> Any:
        self._pet_header = None  # reading: tornado may close the stream on it before the future is returned
        future = super().read_until_regex(regex, max_bytes=max_bytes)
        self._pet_header = future
        return future

    def write(self, data: bytes | memoryview, *args: Any, **kwargs: Any) -> Any:
        if data == TORNADO_BAD_REQUEST:
            last = self._pet_header
            done = last is not None and last is not False and last.done()
            data = self.answer(last.result() if done and last.exception() is None else None)
        return super().write(data, *args, **kwargs)

    def close(self, exc_info: Any = False) -> None:
        last = self._pet_header
        header_read_pending = last is None or last is not False and not last.done()
        if isinstance(exc_info, UnsatisfiableReadError) and header_read_pending and not self.closed() \
                and not self.writing():
            self.too_large(self, bytes(self._read_buffer[:8192]))
        super().close(exc_info)


def answering_streams(answer: Callable[[bytes | None], bytes],
                      too_large: Callable[[IOStream, bytes], None]) -> type[AnsweringStream]:
    """The stream class (for answer_unparsable_requests) that replaces tornado's bare 400 for a request it cannot
    parse (malformed framing, bad headers) with answer(header block as read, or None), and calls too_large(stream,
    the start of the header block) just before tornado closes a connection whose header block outgrew
    max_header_size (it closes without a word). Tornado offers no hook there: its HTTP1Connection writes those
    bytes itself and the stream closes itself on the unsatisfiable read, so the stream's write, close and header
    read are wrapped."""
    return type("ServerAnsweringStream", (AnsweringStream,),
                {"answer": staticmethod(answer), "too_large": staticmethod(too_large)})


def answer_unparsable_requests(stream: IOStream, streams: type[AnsweringStream]) -> None:
    """Make a server's new stream one of `streams` (the same object and fields; see answering_streams)."""
    # The attribute first, then the class: CPython adds keys to the shared dict of the instance's class only.
    stream._pet_header = False  # type: ignore[attr-defined]
    stream.__class__ = streams
