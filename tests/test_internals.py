"""One test per private tornado attribute that server/internals.py uses: each fails, naming the attribute, when
a tornado release renames it or changes what it means."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import aiomysql
import pytest
import tornado.httpserver
import tornado.httputil
import tornado.web
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.tcpserver import TCPServer

from server import internals
from server.connections import accept_one_per_wakeup
from server.db import parse_url
from tests.processes import ROOT


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


async def exchange(port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Send one raw request; the connection and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head


class CloseAfterResponse(tornado.web.RequestHandler):
    attributes: list[set[str]] = []  # the attributes of the request's connection, seen by the test

    def get(self) -> None:
        connection = self.request.connection
        assert isinstance(connection, HTTP1Connection)
        self.attributes.append(set(vars(connection)))
        internals.close_after_response(connection)
        self.finish("bye")


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish("hi")


def http_server(handler: type[tornado.web.RequestHandler]) -> tuple[HTTPServer, socket.socket]:
    sock = listener()
    server = tornado.httpserver.HTTPServer(tornado.web.Application([("/", handler)]))
    server.add_sockets([sock])
    return server, sock


@pytest.mark.gen_test(timeout=10)
async def test_http1connection_disconnect_on_finish_ends_a_kept_alive_connection_after_the_response():
    server, sock = http_server(CloseAfterResponse)
    try:
        reader, writer, head = await exchange(sock.getsockname()[1], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert "_disconnect_on_finish" in CloseAfterResponse.attributes[0], "HTTP1Connection._disconnect_on_finish"
        assert head.startswith(b"HTTP/1.1 200") and b"\r\nConnection: close\r\n" in head
        assert await reader.read() == b"bye"  # then the server closed the connection
        writer.close()
    finally:
        server.stop()


@pytest.mark.gen_test(timeout=10)
async def test_iostream_read_buffer_size_counts_the_bytes_read_and_not_consumed():
    ours, theirs = socket.socketpair()
    stream = IOStream(ours)
    try:
        assert isinstance(vars(stream).get("_read_buffer_size"), int), "IOStream._read_buffer_size"
        theirs.sendall(b"first\nsecond")
        assert await stream.read_until(b"\n") == b"first\n"
        assert internals.buffered_bytes(stream) == len(b"second")
    finally:
        stream.close()
        theirs.close()


@pytest.mark.gen_test(timeout=10)
async def test_httpserver_connections_holds_each_open_connection():
    server, sock = http_server(Hello)
    try:
        assert isinstance(vars(server).get("_connections"), set), "HTTPServer._connections"
        assert internals.open_connections(server) == 0
        reader, writer, head = await exchange(sock.getsockname()[1], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"hi"
        assert internals.open_connections(server) == 1  # kept alive
        writer.close()
        for _ in range(200):
            if internals.open_connections(server) == 0:
                break
            await asyncio.sleep(0.005)
        assert internals.open_connections(server) == 0
    finally:
        server.stop()


class Greeter(TCPServer):
    async def handle_stream(self, stream: IOStream, address: tuple) -> None:
        await stream.write(b"hello")
        stream.close()


@pytest.mark.gen_test(timeout=10)
async def test_tcpserver_sockets_handlers_and_handle_connection_take_our_accept_handler():
    server = Greeter()
    for name in ("_sockets", "_handlers"):
        assert isinstance(vars(server).get(name), dict), f"TCPServer.{name}"
    assert callable(getattr(server, "_handle_connection", None)), "TCPServer._handle_connection"
    sock = listener()
    internals.listen_on(server, sock, accept_one_per_wakeup)
    port = sock.getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await reader.read() == b"hello"  # accepted by ours, handed to tornado's handle_stream
    writer.close()
    server.stop()  # tornado's stop() removes our accept handler and closes the socket
    assert sock.fileno() == -1
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


@pytest.mark.gen_test(timeout=30)
async def test_aiomysql_reader_shows_an_idle_connection_the_server_ended(mysql_url: str) -> None:
    url = parse_url(mysql_url)
    conn = await aiomysql.connect(host=url.host, port=url.port, user=url.user, password=url.password,
                                  db=url.database, autocommit=True)
    killer = await aiomysql.connect(host=url.host, port=url.port, user=url.user, password=url.password,
                                    autocommit=True)
    try:
        assert internals.closed_by_server(conn) is False  # open and idle
        async with killer.cursor() as cur:
            await cur.execute("KILL %s", (conn.thread_id(),))
        for _ in range(100):  # the FIN reaches the reader within a loop iteration or two
            if internals.closed_by_server(conn):
                break
            await asyncio.sleep(0.01)
        assert internals.closed_by_server(conn) is True, "aiomysql's Connection._reader no longer shows EOF"
    finally:
        conn.close()
        killer.close()


class SetsHeaders(tornado.web.RequestHandler):
    seen: list[tuple[str | None, ...]] = []  # what response_header read, before and after the headers were set

    def get(self) -> None:
        before = internals.response_header(self, "Location")
        self.set_header("Location", "/v1/pets/7")
        self.set_header("ETag", '"v1"')
        self.seen.append((before, internals.response_header(self, "Location"), internals.response_header(self, "etag")))
        self.finish("ok")


@pytest.mark.gen_test(timeout=10)
async def test_request_handler_headers_hold_the_response_headers_set_so_far():
    server, sock = http_server(SetsHeaders)
    try:
        reader, writer, head = await exchange(sock.getsockname()[1], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert SetsHeaders.seen == [(None, "/v1/pets/7", '"v1"')], "RequestHandler._headers"
        assert b"\r\nLocation: /v1/pets/7\r\n" in head
        writer.close()
    finally:
        server.stop()


@pytest.mark.gen_test(timeout=10)
async def test_iostream_read_buffer_holds_an_unsatisfiable_header_read_when_the_stream_closes_on_it():
    ours, theirs = socket.socketpair()
    stream = IOStream(ours)
    seen: list[bytes] = []
    internals.answer_unparsable_requests(stream, internals.answering_streams(lambda header: b"",
                                                                            lambda _, start: seen.append(start)))
    try:
        assert isinstance(vars(stream).get("_read_buffer"), bytearray), "IOStream._read_buffer"
        theirs.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 2000)
        with pytest.raises(Exception):  # noqa: B017 - tornado closes the stream: StreamClosedError
            await stream.read_until_regex(b"\r?\n\r?\n", max_bytes=1024)
        assert stream.closed() and seen and seen[0].startswith(b"GET / HTTP/1.1\r\nX-Big: aaa")
    finally:
        stream.close()
        theirs.close()


SHARED_DICT_CHECK = """
import asyncio, socket, sys
from tornado.iostream import IOStream
from server import internals

async def main():
    pairs = [socket.socketpair() for _ in range(2)]
    plain, answering = IOStream(pairs[0][0]), IOStream(pairs[1][0])
    internals.answer_unparsable_requests(answering, internals.answering_streams(lambda h: b"", lambda s, b: None))
    for stream, (_, theirs) in zip((plain, answering), pairs):
        theirs.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        assert (await stream.read_until_regex(b"\\r?\\n\\r?\\n")).startswith(b"GET / HTTP/1.1")
        stream.read_until_regex(b"\\r?\\n\\r?\\n")  # idle, waiting for the next request's header
    print(sys.getsizeof(vars(plain)), sys.getsizeof(vars(answering)), len(vars(answering)))

asyncio.run(main())
"""


def test_a_stream_that_answers_refusals_keeps_the_small_shared_attribute_dict_of_a_plain_one():
    # Every idle keep-alive connection holds one: an instance dict that stops sharing its keys (CPython does past
    # 30) costs 1.3 KiB more each. In a fresh interpreter, as in a worker: other tests here add attributes too.
    result = subprocess.run([sys.executable, "-c", SHARED_DICT_CHECK], cwd=ROOT, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    plain, answering, keys = map(int, result.stdout.split())
    assert answering == plain and keys <= 30, (plain, answering, keys)


def test_reset_response_sets_what_request_handler_clear_sets():
    # On bare instances: what each one sets is exactly what it adds (set_default_headers is tornado's no-op).
    theirs = tornado.web.RequestHandler.__new__(tornado.web.RequestHandler)
    tornado.web.RequestHandler.clear(theirs)
    headers = list(theirs._headers.get_all())
    ours = tornado.web.RequestHandler.__new__(tornado.web.RequestHandler)
    internals.reset_response(ours, headers)
    assert set(vars(ours)) == set(vars(theirs)), "RequestHandler.clear sets other attributes"
    assert {k: v for k, v in vars(ours).items() if k != "_headers"} == \
        {k: v for k, v in vars(theirs).items() if k != "_headers"}
    assert set(vars(ours._headers)) == set(vars(theirs._headers)), "HTTPHeaders._as_list / _combined_cache"
    assert list(ours._headers.get_all()) == headers and ours._headers["date"] == theirs._headers["Date"]
    ours._headers.add("Content-Type", "text/plain")  # the given headers behave as tornado's own
    assert ours._headers.get_list("content-type") == ["text/html; charset=UTF-8", "text/plain"]


class Recorded(tornado.httputil.HTTPConnection):
    """A connection that keeps what a handler writes (the public HTTPConnection interface)."""

    def __init__(self) -> None:
        self.written: list[tuple[int, bytes]] = []

    def set_close_callback(self, callback: object) -> None:
        pass

    def write_headers(self, start_line, headers, chunk=None):  # type: ignore[no-untyped-def]
        self.written.append((start_line.code, chunk or b""))

    def finish(self) -> None:
        pass


def test_without_transforms_sets_the_output_transforms_request_handler_flush_reads():
    def handler() -> tornado.web.RequestHandler:
        request = tornado.httputil.HTTPServerRequest(
            start_line=tornado.httputil.RequestStartLine("GET", "/", "HTTP/1.0"), connection=Recorded())
        return tornado.web.RequestHandler(tornado.web.Application(), request)

    unrouted = handler()  # built outside tornado's routing: _execute never set its transforms
    with pytest.raises(AttributeError, match="_transforms"):
        unrouted.finish("hi")
    ours = handler()
    internals.without_transforms(ours)
    ours.set_status(418)
    ours.finish("hi")
    assert ours.request.connection.written == [(418, b"hi")], "RequestHandler._transforms"  # type: ignore[union-attr]


def test_histogram_buckets_are_the_values_a_histogram_observe_adds_to():
    from prometheus_client import CollectorRegistry, Histogram

    from server.plugins.metrics.collector import observe_all

    def histogram() -> Histogram:
        return Histogram("latency", "latency", ["route"], buckets=(0.001, 0.005, 1.0), registry=CollectorRegistry())

    durations = [0.0005, 0.001, 0.003, 0.003, 0.7, 20.0, 0.0, 1.0]
    one_by_one, at_once = histogram(), histogram()
    for duration in durations:
        one_by_one.labels("r").observe(duration)
    observe_all(at_once.labels("r"), durations)

    def samples(h: Histogram) -> list[tuple[str, dict[str, str], float]]:
        return [(s.name, s.labels, s.value) for s in h.collect()[0].samples if not s.name.endswith("_created")]

    assert samples(at_once) == samples(one_by_one), "Histogram._upper_bounds / _buckets / _sum"
    assert ("latency_bucket", {"route": "r", "le": "0.005"}, 5.0) in samples(at_once)
