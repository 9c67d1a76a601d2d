"""Real server processes for tests: `python main.py` in a subprocess on a free port, its environment, and a
small blocking JSON client (one connection per request) to talk to it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.factories import PASSWORD, unique_email

ROOT = Path(__file__).resolve().parents[1]
PROCESS_VARIABLES = ("PET_API_", "LISTEN_", "NOTIFY_", "WATCHDOG_")  # what the caller's shell must not pass on


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without PET_API_* (nor systemd's socket/notify) variables, unbuffered, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROCESS_VARIABLES)}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_main(*args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    """`python main.py ARGS` run to its end with a clean environment plus env; output captured as text."""
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=clean_env(**env), text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def one_line(text: str) -> str:
    """The only non-blank line of text (asserts there is exactly one)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a test server on this database, with INFO logs."""
    return clean_env(**{"PET_API_DATABASE_URL": database_url, "PET_API_LOG_LEVEL": "INFO", **extra})


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        """The body decoded (None when empty); asserts the server labelled it JSON."""
        if not self.body:
            return None
        assert self.headers.get("content-type", "").startswith("application/json"), self.body[:200]
        return orjson.loads(self.body)

    def answer(self) -> tuple[int, Any]:
        """(status, decoded body)."""
        return self.status, self.json()


def request(port: int, method: str, path: str, *, json: Any = None, body: bytes | Iterable[bytes] | None = None,
            token: str | None = None, headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
    """One blocking request on its own connection (Connection: close). A body given as an iterable of chunks
    is sent chunked; any body goes as application/json unless headers say otherwise."""
    if json is not None:
        body = orjson.dumps(json)
    all_headers = {"Connection": "close"}
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def get(port: int, path: str, **kw: Any) -> Reply:
    """GET on its own connection."""
    return request(port, "GET", path, **kw)


def login(port: int, email: str | None = None, password: str = PASSWORD) -> tuple[int, str]:
    """A new user registered and logged in through this port (asserts both worked): (user id, token)."""
    email = email or unique_email("process")
    created = request(port, "POST", "/v1/users", json={"email": email, "password": password, "nickname": "n"})
    assert created.status == 201, created.body
    issued = request(port, "POST", "/v1/tokens", json={"account": email, "secret": password})
    assert issued.status == 201, issued.body
    return created.json()["data"]["id"], issued.json()["data"]["token"]


class ServerProcess:
    """`python main.py --env=<profile>` in a subprocess of its own session; its output (JSON logs) goes to a file.
    `with ServerProcess(...) as server:` waits until it is ready and stops it at the end."""

    def __init__(self, log_path: Path, env: dict[str, str], *, profile: str = "test", workers: int = 1,
                 args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "main.py", f"--env={profile}", "--port", str(self.port),
                   "--workers", str(workers), *args]
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

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
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not get ready in {timeout} s:\n{self.output()[-3000:]}")

    def __enter__(self) -> ServerProcess:
        """Ready (or stopped, if it does not get ready)."""
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request(self, method: str, path: str, **kw: Any) -> Reply:
        """One blocking request to this server."""
        return request(self.port, method, path, **kw)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are skipped)."""
        return [orjson.loads(line) for line in self.output().splitlines() if line.startswith("{")]

    def workers(self) -> list[int]:
        """The supervisor's worker pids."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def rss_kib(self) -> int:
        """Resident memory of the server process."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to its whole session (workers too) if it does not exit."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)


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
