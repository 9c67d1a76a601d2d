"""Every use of a private attribute of tornado or aiomysql, in one place (tests/test_internals.py checks each
one against the installed release; pyproject.toml caps both below their next minor version). Each one buys something
measured or something tornado's public API cannot do: the drain and the header timeout need to see and end
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


TORNADO_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"  # what http1connection writes for a message it cannot parse


def answer_unparsable_requests(stream: IOStream, answer: Callable[[bytes | None], bytes],
                               too_large: Callable[[bytes], None]) -> None:
    """Replace tornado's bare 400 for a request it cannot parse (malformed framing, bad headers) with
    answer(header block as read, or None), and call too_large(the start of the header block) just before
    tornado closes a connection whose header block outgrew max_header_size (it closes without a word).
    Tornado offers no hook there: its HTTP1Connection writes those bytes itself and the stream closes itself on
    the unsatisfiable read, so the stream's write and close are wrapped, and its header read remembered (one
    connection's wrappers)."""
    read_until_regex, write, close = stream.read_until_regex, stream.write, stream.close
    last: list[Any] = []

    def reading(regex: bytes, max_bytes: int | None = None) -> Any:
        last[:] = [None]  # reading: tornado may close the stream on it before the future is returned
        future = read_until_regex(regex, max_bytes=max_bytes)
        last[:] = [future]
        return future

    def writing(data: bytes | memoryview, *args: Any, **kwargs: Any) -> Any:
        if data == TORNADO_BAD_REQUEST:
            done = bool(last) and last[0] is not None and last[0].done()
            header = last[0].result() if done and last[0].exception() is None else None
            data = answer(header)
        return write(data, *args, **kwargs)

    def closing(exc_info: Any = False) -> None:
        header_read_pending = bool(last) and (last[0] is None or not last[0].done())
        if isinstance(exc_info, UnsatisfiableReadError) and header_read_pending and not stream.closed() \
                and not stream.writing():
            too_large(bytes(stream._read_buffer[:8192]))
        close(exc_info)

    stream.read_until_regex = reading  # type: ignore[method-assign]
    stream.write = writing  # type: ignore[method-assign]
    stream.close = closing  # type: ignore[method-assign]
