"""Helpers of the reliability tests: fresh migrated databases, a real server process, a wide HTTP client,
a database that refuses revocations."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.factories import Api

ROOT = Path(__file__).resolve().parents[2]


async def connections_in_use(db: Any, *, settle: float = 2.0) -> int:
    """Connections still borrowed once the app's own background work (the revocation refresh, every
    0.2 s in the test profile) has had time to give its one back; a leaked connection never comes back."""
    for _ in range(int(settle / 0.02)):
        if not db.pool_stats()[0]:
            break
        await asyncio.sleep(0.02)
    return db.pool_stats()[0]


def run_async(coro: Any) -> Any:
    """Run a coroutine on a private loop (never asyncio.run(): it resets the test's current loop)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wide_api(base_url: str, max_clients: int = 128) -> Api:
    """A JSON client that really runs max_clients requests at once (the shared one queues after 10)."""
    return Api(AsyncHTTPClient(force_instance=True, max_clients=max_clients), base_url)


class ServerProcess:
    """`python main.py --env=test` in a subprocess, on a free port; its stdout is kept in a file."""

    def __init__(self, log_path: Path, *, env: dict[str, str], profile: str = "test",
                 args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PET_API_")}
        full_env.update(env)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "main.py", f"--env={profile}", "--port", str(self.port), *args],
                                     cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.output()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/v1/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer in {timeout} s: {self.output()[-2000:]}")

    def rss_kib(self) -> int:
        """Resident memory of the server process."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Any]:
    """Factory: start_server(env) -> a ready ServerProcess, stopped at teardown."""
    started: list[ServerProcess] = []

    def start_server(env: dict[str, str]) -> ServerProcess:
        server = ServerProcess(tmp_path / f"server{len(started)}.log", env=env)
        started.append(server)
        server.wait_ready()
        return server

    yield start_server
    for server in started:
        server.stop()


@pytest.fixture
def revocations_fail(mysql_url: str) -> Any:
    """While active, the database refuses every new row of token_revocations (a real trigger, as if the
    database went away between a change and its revocation)."""
    host, rest = mysql_url.split("@", 1)[1].split("/", 1)[0], mysql_url.rsplit("/", 1)[1]
    conn = pymysql.connect(host=host.split(":")[0], port=int(host.split(":")[1]), user="root", password="",
                           database=rest, autocommit=True)

    def arm() -> None:
        with conn.cursor() as cur:
            cur.execute("CREATE TRIGGER refuse_revocations BEFORE INSERT ON token_revocations FOR EACH ROW"
                        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'revocations unavailable'")

    try:
        yield arm
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS refuse_revocations")
        conn.close()
