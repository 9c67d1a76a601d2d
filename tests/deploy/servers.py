"""Helpers of the deployment tests: a raw keep-alive HTTP client, a steady load, polling, descriptor limits."""

from __future__ import annotations

import asyncio
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.processes import Reply, get

PLUGINS_WITH_SLOW = '["core", "accounts", "pets", "records", "metrics", "tests.deploy.slow_plugin"]'


def raise_nofile(wanted: int) -> int:
    """Raise this process' descriptor limit (children inherit it) towards wanted; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class KeepAlive:
    """A raw HTTP/1.1 keep-alive connection (tornado's client opens one connection per request)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> KeepAlive:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> Reply:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed before a response")
        status = int(status_line.split()[1])
        response_headers: dict[str, str] = {}
        while (line := (await self.reader.readline()).rstrip(b"\r\n")):
            name, _, value = line.decode("latin1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        length = int(response_headers.get("content-length", "0"))
        return Reply(status, response_headers, await self.reader.readexactly(length))

    async def closed_by_server(self, within: float) -> bool:
        """Whether the server closes the connection within `within` seconds (end of stream, nothing else sent)."""
        try:
            async with asyncio.timeout(within):
                return await self.reader.read(1) == b""
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    def close(self) -> None:
        self.writer.close()


def wait_for(condition: Callable[[], object], what: str, within: float = 15) -> None:
    """Poll condition until it is true; fail naming what did not happen."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.05)


@dataclass
class Outcome:
    at: float  # time.monotonic() when the request began
    took: float
    ok: bool
    detail: str


class Load:
    """Threads sending GET path, each on a fresh connection, until the block ends; every outcome is kept."""

    def __init__(self, port: int, path: str, *, threads: int = 4, expect: int = 200, timeout: float = 15,
                 headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.path = path
        self.headers = headers
        self.threads = threads
        self.expect = expect
        self.timeout = timeout
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                reply = get(self.port, self.path, headers=self.headers, timeout=self.timeout)
                ok, detail = reply.status == self.expect, f"{reply.status} {reply.body[:120]!r}"
            except OSError as exc:
                ok, detail = False, repr(exc)
            outcome = Outcome(began, time.monotonic() - began, ok, detail)
            self.outcomes.append(outcome)

    def __enter__(self) -> Load:
        for thread in self._workers:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(self.timeout + 5)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]
