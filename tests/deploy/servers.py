"""Helpers of the deployment tests: migrated databases, real server processes, a raw keep-alive HTTP client."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_WITH_SLOW = '["core", "accounts", "pets", "records", "metrics", "tests.deploy.slow_plugin"]'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_nofile(wanted: int) -> int:
    """Raise this process' descriptor limit (children inherit it) towards wanted; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a server process: none of the caller's PET_API_* variables, INFO logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PET_API_", "LISTEN_", "NOTIFY_", "WATCHDOG_"))}
    env.update({"PET_API_DATABASE_URL": database_url, "PET_API_LOG_LEVEL": "INFO", **extra})
    return env


class Servers:
    """Starts server processes on one database (`servers.start(workers=1, **env)`); stop_all() at teardown."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.started: list[ServerProcess] = []

    def start(self, workers: int = 1, *, ready: bool = True, **env: str) -> ServerProcess:
        log_path = self.tmp_path / f"server{len(self.started)}.log"
        server = ServerProcess(log_path, server_env(self.database_url, **env), workers=workers)
        self.started.append(server)
        return server.wait_ready() if ready else server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


class ServerProcess:
    """`python main.py --env=test` in a subprocess; its stdout (JSON logs) goes to a file."""

    def __init__(self, log_path: Path, env: dict[str, str], *, port: int | None = None, workers: int = 1,
                 prefix: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        command = [*prefix, sys.executable, "main.py", "--env=test", "--port", str(self.port),
                   "--workers", str(workers)]
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30) -> ServerProcess:
        """Wait until GET /v1/health/ready answers 200 (the database pool is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                if get(self.port, "/v1/health/ready", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not get ready in {timeout} s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are skipped)."""
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                lines.append(orjson.loads(line))
        return lines

    def workers(self) -> list[int]:
        """The supervisor's worker pids."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL (of the group: workers too) if it does not exit."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                for pid in self.workers():
                    os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def _read_reply(sock_file: Any) -> Reply:
    status_line = sock_file.readline()
    if not status_line:
        raise ConnectionError("closed before a response")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := sock_file.readline().rstrip(b"\r\n")):
        name, _, value = line.decode("latin1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = sock_file.read(int(headers.get("content-length", "0")))
    return Reply(status, headers, body)


def request(port: int, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 10) -> Reply:
    """One blocking request on its own connection (Connection: close)."""
    body = orjson.dumps(json) if json is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if json is not None:
        lines.append("Content-Type: application/json")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        with sock.makefile("rb") as f:
            return _read_reply(f)


def get(port: int, path: str, *, headers: dict[str, str] | None = None, timeout: float = 10) -> Reply:
    """GET on its own connection."""
    return request(port, "GET", path, headers=headers, timeout=timeout)


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
