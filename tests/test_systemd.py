"""systemd: the units (hardening score, notify, stop), the notify protocol as a service manager sees it
(READY=1 once serving, WATCHDOG=1 from the event loop, STOPPING=1), and restarts under socket activation."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.config import load_config
from server.workers import STOP_MARGIN
from tests.deploy.servers import Load, wait_for
from tests.processes import ROOT, free_port, get, server_env

SERVICE = ROOT / "systemd" / "pet-api.service"
SOCKET = ROOT / "systemd" / "pet-api.socket"


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Key -> values of a unit file (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            name, _, value = line.partition("=")
            settings.setdefault(name.strip(), []).append(value.strip())
    return settings


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match[1]) * (60 if match[2] == "min" else 1)


def test_the_service_unit_is_hardened_to_1_5_or_lower():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(SERVICE)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for pet-api\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    print(f"\nsystemd-analyze security --offline=true: {match[1]}")
    assert float(match[1]) <= 1.5
    # The figure the unit's comment and the README state, measured with the systemd they name.
    stated = re.search(r"rates this (\d+\.\d+) \(\"OK\"\) with\n# systemd (\d+)", SERVICE.read_text())
    assert stated, "the unit's hardening comment no longer states the score and the systemd version"
    readme = (ROOT / "README.md").read_text()
    assert f"rates it {stated[1]} with systemd {stated[2]}," in readme
    version = subprocess.run(["systemd-analyze", "--version"], capture_output=True, text=True, timeout=30).stdout
    if version.split()[1] == stated[2]:
        assert match[1] == stated[1], f"systemd {stated[2]} rates the unit {match[1]}, the unit says {stated[1]}"


def test_the_units_notify_restart_on_failure_and_stop_after_the_drain():
    service, sock = unit_settings(SERVICE), unit_settings(SOCKET)
    prod = load_config("prod", environ={"PET_API_SECRET_KEY": "k" + os.urandom(24).hex(),
                                        "PET_API_DATABASE_URL": "mysql://u@h/db"})
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert _seconds(service["WatchdogSec"][0]) > 0
    assert service["Restart"] == ["on-failure"]
    # Not restarted when only the operator can help: configuration (2), pending migrations (3), a statement the
    # database refused at start (5); retried while the database is unreachable (4) or the address taken (7).
    assert service["RestartPreventExitStatus"] == ["2 3 5"]
    assert service["EnvironmentFile"] == ["/etc/pet-api/env"]
    assert not any("PET_API_" in value for value in service.get("Environment", []))  # settings live in the env file
    assert service["KillMode"] == ["mixed"]  # SIGTERM to the supervisor only: it forwards one to each worker
    assert _seconds(service["TimeoutStopSec"][0]) > prod.shutdown_timeout + STOP_MARGIN
    assert int(service["LimitNOFILE"][0]) >= 65536
    assert "pet-api.socket" in service["Requires"][0]
    assert sock["ListenStream"] == [str(prod.port)]


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET: a datagram socket (abstract when the name starts with @)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)

    def collect(self, seconds: float) -> list[str]:
        """Every field received during the next `seconds`."""
        fields: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                fields += self.sock.recv(4096).decode().splitlines()
            except TimeoutError:
                break
        return fields

    def wait_for(self, field: str, within: float = 30) -> list[str]:
        """The fields received up to and including the datagram that carries field."""
        fields: list[str] = []
        deadline = time.monotonic() + within
        while field not in fields:
            left = deadline - time.monotonic()
            assert left > 0, f"no {field} within {within} s (got {fields})"
            self.sock.settimeout(left)
            fields += self.sock.recv(4096).decode().splitlines()
        return fields

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(f"@pet-api-test-{os.getpid()}-{time.monotonic_ns()}")
    yield sock
    sock.close()


def _watchdog_stops_while_stopped(notify: NotifySocket, pid: int) -> list[str]:
    os.kill(pid, signal.SIGSTOP)
    try:
        notify.collect(0.6)  # a ping already on its way
        return notify.collect(1.5)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_ready_watchdog_and_stopping_reach_systemd(servers, notify_socket):
    server = servers.start(ready=False, NOTIFY_SOCKET=notify_socket.name, WATCHDOG_USEC="1000000")
    fields = notify_socket.wait_for("READY=1")
    assert f"MAINPID={server.pid}" in fields
    reply = get(server.port, "/v1/health/ready")  # at READY it listens and the pool is up
    assert reply.status == 200 and reply.json()["data"] == {"status": "ok"}
    assert notify_socket.collect(1.6).count("WATCHDOG=1") >= 2  # every 0.5 s: half of WATCHDOG_USEC

    assert "WATCHDOG=1" not in _watchdog_stops_while_stopped(notify_socket, server.pid)
    assert "WATCHDOG=1" in notify_socket.collect(1.5)  # beats again once the loop runs

    server.signal(signal.SIGTERM)
    assert "STOPPING=1" in notify_socket.wait_for("STOPPING=1", within=10)
    assert server.wait(30) == 0


def test_with_workers_ready_waits_for_all_and_a_stopped_worker_withholds_the_watchdog(servers, tmp_path):
    notify = NotifySocket(str(tmp_path / "notify"))  # a socket path, as systemd normally gives
    try:
        server = servers.start(workers=2, ready=False, NOTIFY_SOCKET=notify.name, WATCHDOG_USEC="1000000")
        fields = notify.wait_for("READY=1")
        serving = [line for line in server.log_lines() if line["message"] == "serving"]
        assert len(serving) == 2  # READY=1 only once both workers listen with their pool up
        assert f"MAINPID={server.pid}" in fields
        assert notify.collect(1.6).count("WATCHDOG=1") >= 2

        stopped = _watchdog_stops_while_stopped(notify, server.workers()[0])
        assert "WATCHDOG=1" not in stopped  # systemd would restart the service
        assert "WATCHDOG=1" in notify.collect(1.5)
        blocked = [line for line in server.log_lines() if "event loop is blocked" in line["message"]]
        assert len(blocked) >= 1

        server.signal(signal.SIGTERM)
        assert "STOPPING=1" in notify.wait_for("STOPPING=1", within=10)
        assert server.wait(30) == 0
    finally:
        notify.close()


def test_no_ready_when_the_database_is_unreachable(tmp_path, notify_socket):
    port = free_port()  # nothing listens there
    env = server_env(f"mysql://root:@127.0.0.1:{port}/nothing", NOTIFY_SOCKET=notify_socket.name)
    result = subprocess.run([sys.executable, "main.py", "--env=test", "--port", str(free_port())], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"the database at mysql://***@127.0.0.1:{port}/nothing is unreachable at start-up" in result.stderr
    assert "READY=1" not in notify_socket.collect(0.1)


@pytest.mark.slow
def test_restarts_under_socket_activation_refuse_no_connection(tmp_path, database):
    if shutil.which("systemd-socket-activate") is None:
        pytest.skip("systemd-socket-activate not installed (apt-get install systemd)")
    port = free_port()
    events = tmp_path / "events"
    env = server_env(database)
    passed = [arg for name in env if name.startswith("PET_API_") for arg in ("-E", name)]
    command = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", *passed, "--",
               sys.executable, "tests/deploy/socket_holder.py", str(events), "--",
               sys.executable, "main.py", "--env=test"]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        holder = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0  # this first connection starts the service

        wait_for(listening, "systemd-socket-activate listening")
        first = get(port, "/v1/health/ready", timeout=30)
        assert first.status == 200, first.body

        def started() -> list[str]:
            return [line for line in events.read_text().splitlines() if line.startswith("started")]

        def serving() -> int:
            return log_path.read_text(errors="replace").count('"message":"serving"')

        with Load(port, "/v1/health/ready", threads=4, timeout=30) as load:
            for restart in (1, 2):
                time.sleep(0.7)
                holder.send_signal(signal.SIGHUP)  # systemctl restart pet-api
                wait_for(lambda r=restart: len(started()) == r + 1 and serving() == r + 1, "the restarted server")
            time.sleep(0.7)
        exits = [line.split() for line in events.read_text().splitlines() if line.startswith("exited")]
        assert [code for _, _, code in exits] == ["0", "0"]  # each old server drained and exited 0
        assert load.failures == []  # no refused connection, no error: they waited in systemd's queue
        assert len(load.outcomes) > 100
        longest = max(o.took for o in load.outcomes)
        print(f"\nsocket activation: 2 restarts under load, {len(load.outcomes)} requests, 0 refused, "
              f"0 failed; the longest wait (queued during a restart) {longest:.2f} s")
    finally:
        holder.send_signal(signal.SIGTERM)
        try:
            holder.wait(30)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait(5)
