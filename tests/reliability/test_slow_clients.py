"""Slow and large clients against a real server process: header tricklers are cut at header_timeout while
others are served; oversized bodies are 413/1007 without holding memory; hostile JSON is 400/1001."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.conftest import migrated_database, run_async
from tests.processes import ServerProcess, clean_env, login

HEADER_TIMEOUT = 2.0
MAX_BODY = 65536
TRICKLERS = 1000


@pytest.fixture(scope="module")
def server(mysql_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    url = migrated_database(mysql_server_url, "slow_clients")
    with ServerProcess(tmp_path_factory.mktemp("slow") / "server.log", clean_env(
            PET_API_DATABASE_URL=url, PET_API_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
            PET_API_MAX_BODY_SIZE=str(MAX_BODY))) as proc:
        yield proc


@pytest.fixture(scope="module")
def token(server: ServerProcess) -> str:
    return login(server.port)[1]


async def _trickle(port: int, lifetimes: list[float], answered: list[bytes]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.monotonic()
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(int(HEADER_TIMEOUT * 4 + 10)):
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), 0.5)
            except TimeoutError:
                writer.write(b"X-Slow: y\r\n")  # one more header line, never the blank line
                continue
            if data:
                answered.append(data)
            break
    except ConnectionError:
        pass
    lifetimes.append(time.monotonic() - opened)
    writer.close()


async def _served_meanwhile(port: int, stop: asyncio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        latencies.append(time.monotonic() - started)
        await asyncio.sleep(0.02)


@pytest.mark.slow
def test_header_tricklers_are_cut_at_the_header_timeout_while_others_are_served(server: ServerProcess):
    lifetimes: list[float] = []
    answered: list[bytes] = []
    latencies: list[float] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        others = asyncio.ensure_future(_served_meanwhile(server.port, stop, latencies))
        await asyncio.gather(*(_trickle(server.port, lifetimes, answered) for _ in range(TRICKLERS)))
        stop.set()
        await others

    run_async(scenario())
    assert len(lifetimes) == TRICKLERS
    assert not answered, answered[:3]
    # The server sweeps every header_timeout / 4, so a connection lives header_timeout to 1.25 x it.
    assert min(lifetimes) > HEADER_TIMEOUT - 0.2, min(lifetimes)
    assert max(lifetimes) < HEADER_TIMEOUT * 1.25 + 1.5, max(lifetimes)
    assert len(latencies) >= 20
    assert max(latencies) < 1.0, max(latencies)
    latencies.sort()
    print(f"\n{TRICKLERS} header tricklers: closed after {min(lifetimes):.2f}-{max(lifetimes):.2f} s "
          f"(header_timeout {HEADER_TIMEOUT} s); meanwhile {len(latencies)} other requests, all 200, "
          f"median {latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")


def test_body_one_byte_over_the_limit_is_413_without_memory_growth(server: ServerProcess, token: str):
    exact = orjson.dumps({"name": "x" * (MAX_BODY - 40), "species": "dog"}).ljust(MAX_BODY)
    assert len(exact) == MAX_BODY
    status, body = server.request("POST", "/v1/pets", body=exact, token=token).answer()
    assert (status, body["error_code"], body["errors"][0]["field"]) == (400, 1001, "name")
    over = exact + b" "
    status, body = server.request("POST", "/v1/pets", body=over, token=token).answer()
    assert (status, body["error_code"], body["request"]) == (413, 1007, "POST /v1/pets"), body

    def chunked(size: int) -> Iterator[bytes]:  # http.client sends an iterator chunk-encoded
        chunk = b" " * 65536
        for _ in range(size // len(chunk)):
            yield chunk

    status, body = server.request("POST", "/v1/pets", body=chunked(4 << 20), token=token).answer()
    assert (status, body["error_code"]) == (413, 1007), body
    before = server.rss_kib()
    for n in range(100):
        if n % 2:
            status, body = server.request("POST", "/v1/pets", body=over, token=token).answer()
        else:
            status, body = server.request("PATCH", "/v1/pets/1", body=chunked(1 << 20), token=token).answer()
        assert (status, body["error_code"]) == (413, 1007), body
    growth = server.rss_kib() - before
    assert growth < 8 * 1024, f"RSS grew {growth} KiB"
    print(f"\n100 oversized bodies (50 x {MAX_BODY + 1} B, 50 x 1 MiB chunked): all 413/1007, "
          f"server RSS {before // 1024} MiB -> {(before + growth) // 1024} MiB")


def test_a_large_oversized_upload_gets_its_413_not_a_reset(server: ServerProcess, token: str):
    """Answering before the body is read made Tornado close mid-upload: clients saw a reset, not the 413."""
    body = b"a" * (2 << 20)
    request = (f"POST /v1/pets HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(request + body)  # raises ConnectionResetError / BrokenPipeError on a reset
            reply = sock.makefile("rb")
            status_line = reply.readline()
            headers = {}
            while (line := reply.readline().strip()):
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            answer = orjson.loads(reply.read(int(headers["content-length"])))
            assert status_line.split()[1] == b"413", status_line
            assert (answer["error_code"], answer["request"]) == (1007, "POST /v1/pets")
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\n\r\n")  # the connection is still usable
            assert reply.readline().split()[1] == b"200"


HOSTILE_JSON = {
    "deeply nested arrays": b"[" * 10_000,
    "deeply nested objects": b'{"a":' * 10_000,
    "nested, then closed": b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b', "species": "dog"}',
    "a huge number": b'{"name": "n", "species": "dog", "breed": ' + b"9" * 60_000 + b"}",
    "an overflowing float": b'{"name": "n", "species": "dog", "breed": 1e999999}',
    "a huge array": b"[" + b"1," * 30_000 + b"1]",
    "a huge string": orjson.dumps({"name": "n" * 60_000, "species": "dog"}),
    "many keys": orjson.dumps({f"k{i}": i for i in range(4000)}),
    "not UTF-8": b'{"name": "\xff\xfe", "species": "dog"}',
    "a lone surrogate": b'{"name": "\\ud800", "species": "dog"}',
    "a NUL byte": b'{"name": "a\x00", "species": "dog"}',
    "trailing garbage": b'{"name": "n", "species": "dog"} {}',
    "duplicate keys": b'{"name": "n", "species": "dog", "species": "cat", "owner_id": 1}',
}


@pytest.mark.parametrize("raw", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
def test_hostile_json_is_400(server: ServerProcess, token: str, raw: bytes):
    assert len(raw) <= MAX_BODY
    status, body = server.request("POST", "/v1/pets", body=raw, token=token).answer()
    assert (status, body["error_code"], body["request"]) == (400, 1001, "POST /v1/pets"), body
    assert body["errors"] and all({"field", "message"} <= set(e) for e in body["errors"])
    status, body = server.request("GET", "/v1/health").answer()
    assert status == 200
