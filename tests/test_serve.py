"""Serving: an address that cannot be listened on, graceful drain on SIGTERM, a second signal, slow headers and
idle keep-alive connections, the client address behind a proxy, and the memory of 10,000 idle keep-alive
connections."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.connections import make_http_server
from tests.deploy.servers import PLUGINS_WITH_SLOW, KeepAlive, raise_nofile, wait_for
from tests.factories import Api, create_user
from tests.plugins.samples.start_waits import WAITING
from tests.processes import Reply, ServerProcess, Servers, clean_env, free_port, get, one_line, run_main

StartServer = Callable[..., ServerProcess]
SAMPLES = "tests.plugins.samples"
DEV_PLUGINS = ("core", "accounts", "pets")


@pytest.fixture
def start_server(servers: Servers) -> StartServer:
    """start_server(workers=1, **env) -> a ready server process, stopped at teardown."""
    return servers.start


def metric(port: int, name: str, **labels: str) -> float:
    """One sample of the server's /metrics, parsed by prometheus-client (0 when absent)."""
    text = get(port, "/metrics").body.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.mark.parametrize(("reuse_port", "workers"), [(False, "1"), (True, "2"), (True, "0")])
def test_a_port_another_process_listens_on_stops_the_start_with_one_line(tmp_path, reuse_port, workers):
    """Exit 7 naming the address, also when the other listener has SO_REUSEPORT (another instance with several
    workers), which our reuse_port bind used to join in silence, both instances serving half the connections."""
    port = free_port()
    with socket.socket() as other:
        if reuse_port:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        result = run_main("--env=dev", "--port", str(port), "--workers", workers, timeout=20,
                          PET_API_DATABASE_URL=f"sqlite:///{tmp_path}/dev.sqlite3")
    assert (result.returncode, one_line(result.stderr)) == (
        7, f"pet-api: cannot listen on 127.0.0.1:{port}: address already in use (another process listens there)")


def test_a_host_that_does_not_resolve_stops_the_start_with_one_line(tmp_path):
    result = run_main("--env=dev", "--host", "999.1.1.1", "--port", "8140", timeout=20,
                      PET_API_DATABASE_URL=f"sqlite:///{tmp_path}/dev.sqlite3")
    assert result.returncode == 7
    assert one_line(result.stderr).startswith("pet-api: cannot listen on 999.1.1.1:8140: cannot resolve the host (")


def dev_start(database: Path, *plugins: str) -> subprocess.CompletedProcess[str]:
    """A dev start on this embedded database with core, accounts, pets and these plugins, run to its end: one that
    does not exit within 20 s fails the test."""
    return run_main("--env=dev", "--port", str(free_port()), timeout=20, PET_API_DATABASE_URL=f"sqlite:///{database}",
                    PET_API_PLUGINS=",".join((*DEV_PLUGINS, *plugins)))


def test_a_start_the_embedded_database_refuses_a_statement_of_exits_5_with_one_line(tmp_path):
    """The start fails once SQLite is open (its worker thread, not a daemon, used to keep the process alive for
    good, deaf to SIGTERM and SIGINT): one line, exit 5, as on MariaDB."""
    database = tmp_path / "dev.sqlite3"
    assert run_main("migrate", "--env=dev", PET_API_DATABASE_URL=f"sqlite:///{database}").returncode == 0
    with sqlite3.connect(database) as conn:
        conn.execute("DROP TABLE token_revocations")  # a schema changed by hand
    conn.close()
    result = dev_start(database)
    assert (result.returncode, one_line(result.stderr)) == (
        5, "pet-api: the database refused a statement at start-up: SQLITE_ERROR: no such table: token_revocations")


def test_a_plugin_whose_on_start_raises_on_the_embedded_database_ends_the_start(tmp_path):
    result = dev_start(tmp_path / "dev.sqlite3", f"{SAMPLES}.start_fails")
    assert (result.returncode, one_line(result.stderr)) == (
        2, "pet-api: plugin 'start_fails': on_start failed: RuntimeError: this plugin fails to start on purpose")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_during_the_start_ends_it(tmp_path, signum):
    """A start held up (here by a plugin's on_start; the migration lock, a slow role map...) is given up on the
    first SIGTERM or Ctrl-C, closing the database it opened: exit 0, as after a drain."""
    env = clean_env(PET_API_DATABASE_URL=f"sqlite:///{tmp_path}/dev.sqlite3",
                    PET_API_PLUGINS=",".join((*DEV_PLUGINS, f"{SAMPLES}.start_waits")))
    process = ServerProcess(tmp_path / "server.log", env, profile="dev")
    try:
        wait_for(lambda: WAITING in process.output(), "the plugin's on_start began", within=20)
        process.signal(signum)
        assert process.wait(10) == 0, process.output()[-3000:]
    finally:
        process.stop()


async def wait_in_flight(port: int, count: int) -> None:
    """Until the server reports at least count requests in flight (besides the scrape itself), up to 20 s."""
    deadline = time.monotonic() + 20
    while await asyncio.to_thread(metric, port, "pet_api_requests_in_flight") < count + 1:
        assert time.monotonic() < deadline, f"fewer than {count} requests in flight after 20 s"
        await asyncio.sleep(0.05)


@pytest.mark.gen_test(timeout=90)
async def test_sigterm_lets_200_slow_requests_on_keep_alive_connections_finish(start_server):
    server = start_server(PET_API_PLUGINS=PLUGINS_WITH_SLOW)
    conns = [await KeepAlive.open(server.port) for _ in range(200)]
    first = await asyncio.gather(*(c.request("GET", "/v1/health") for c in conns))
    assert {(r.status, r.headers.get("connection", "keep-alive")) for r in first} == {(200, "keep-alive")}
    slow = [asyncio.ensure_future(c.request("GET", "/test/slow?ms=2000")) for c in conns]
    await wait_in_flight(server.port, 200)

    server.signal(signal.SIGTERM)
    began = time.monotonic()
    replies = await asyncio.gather(*slow, return_exceptions=True)
    failed = [r for r in replies if not isinstance(r, Reply) or r.status != 200]
    assert failed == []
    assert {r.body for r in replies} == {b'{"code":200,"data":{"slept_ms":2000},"message":"ok"}'}
    assert {r.headers["connection"] for r in replies} == {"close"}  # the next request goes elsewhere
    assert all(await asyncio.gather(*(c.closed_by_server(5) for c in conns)))
    code = await asyncio.to_thread(server.wait, 20)
    took = time.monotonic() - began
    assert code == 0
    assert took < 2 + 10  # the requests' remaining time plus closing, far below shutdown_timeout
    with pytest.raises(ConnectionRefusedError):
        await KeepAlive.open(server.port)  # stopped accepting
    messages = [line["message"] for line in server.log_lines() if line["logger"] == "pet_api.serve"]
    assert messages[-2:] == ["stopping: draining connections", "stopped"]
    assert server.log_lines()[-1]["drained"] is True
    print(f"\ndrain: 200 in-flight slow requests on keep-alive connections, 0 failed, exit 0 in {took:.2f} s")


@pytest.mark.gen_test(timeout=60)
async def test_sighup_drains_like_sigterm_and_exits_129_for_systemd_to_start_it_again(start_server):
    """No reload (the configuration is read at start only): a graceful stop whose code Restart=on-failure restarts."""
    server = start_server(PET_API_PLUGINS=PLUGINS_WITH_SLOW)
    conn = await KeepAlive.open(server.port)
    slow = asyncio.ensure_future(conn.request("GET", "/test/slow?ms=1500"))
    await wait_in_flight(server.port, 1)

    server.signal(signal.SIGHUP)
    reply = await slow
    assert (reply.status, reply.body) == (200, b'{"code":200,"data":{"slept_ms":1500},"message":"ok"}')
    assert reply.headers["connection"] == "close"
    assert await asyncio.to_thread(server.wait, 20) == 128 + signal.SIGHUP
    lines = [line for line in server.log_lines() if line["logger"] == "pet_api.serve"]
    assert [line["message"] for line in lines][-2:] == ["stopping: draining connections", "stopped"]
    assert lines[-1]["drained"] is True


@pytest.mark.gen_test(timeout=60)
async def test_a_second_signal_exits_at_once(start_server):
    server = start_server(PET_API_PLUGINS=PLUGINS_WITH_SLOW)
    conn = await KeepAlive.open(server.port)
    pending = asyncio.ensure_future(conn.request("GET", "/test/slow?ms=30000"))
    await wait_in_flight(server.port, 1)
    server.signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert server.proc.poll() is None  # draining: waits for the slow request
    began = time.monotonic()
    server.signal(signal.SIGINT)
    assert await asyncio.to_thread(server.wait, 5) == 128 + signal.SIGINT
    assert time.monotonic() - began < 2
    with pytest.raises(ConnectionError):
        await pending


@pytest.mark.gen_test(timeout=60)
async def test_slow_headers_are_cut_at_header_timeout_and_idle_keep_alive_at_idle_timeout(start_server):
    server = start_server(PET_API_HEADER_TIMEOUT="1", PET_API_IDLE_CONNECTION_TIMEOUT="4")
    idle = await KeepAlive.open(server.port)
    assert (await idle.request("GET", "/v1/health")).status == 200
    trickler = await KeepAlive.open(server.port)
    trickler.writer.write(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    began = time.monotonic()
    for n in range(10):  # a header line every 0.3 s: tornado alone would wait up to the idle timeout
        await asyncio.sleep(0.3)
        if trickler.writer.is_closing() or trickler.reader.at_eof():
            break
        trickler.writer.write(f"X-Slow-{n}: 1\r\n".encode())
    assert await trickler.closed_by_server(3)
    cut_after = time.monotonic() - began
    assert 1 <= cut_after < 3.5
    reply = await idle.request("GET", "/v1/health")  # 2-3 s idle: still open
    assert reply.status == 200 and reply.json()["data"] == {"status": "ok"}
    began = time.monotonic()
    assert await idle.closed_by_server(8)
    assert 3 <= time.monotonic() - began < 7


@pytest.mark.parametrize(("config_overrides", "status"), [({"xheaders": False}, 200), ({"xheaders": True}, 403)])
@pytest.mark.gen_test
async def test_x_real_ip_is_the_client_address_only_when_the_profile_trusts_a_proxy(api, config_overrides, status):
    response = await api.get("/metrics", headers={"X-Real-IP": "203.0.113.9"})
    assert response.status == status
    if status == 403:
        assert response.body == {"error_code": 1004, "message": "metrics are served to local addresses only",
                                 "request": "GET /metrics"}
    else:
        assert b"pet_api_requests_total" in response.raw


@pytest.mark.gen_test
async def test_an_ipv4_client_of_a_dual_stack_socket_is_its_ipv4_address(app, http_client):
    """systemd's ListenStream=8000 is [::] with IPv4 mapped into it: 127.0.0.1 arrives as ::ffff:127.0.0.1, which
    is still loopback for /metrics and is the address sessions record."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
    except OSError:
        sock.close()
        pytest.skip("no dual-stack IPv6 socket on this host")
    sock.listen(16)
    sock.setblocking(False)
    server = make_http_server(app, app.config)
    server.add_sockets([sock])
    try:
        api = Api(http_client, f"http://127.0.0.1:{sock.getsockname()[1]}")
        scraped = await api.get("/metrics")
        assert scraped.status == 200, scraped.body
        assert b"pet_api_requests_total" in scraped.raw
        user = await create_user(app)
        token = (await api.login(user.email)).body["data"]["token"]
        sessions = await api.get("/v1/sessions", token=token)
        assert sessions.status == 200
        assert [s["address"] for s in sessions.body["data"]] == ["127.0.0.1"]
    finally:
        server.stop()
        await server.close_all_connections()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _latencies(port: int, count: int) -> list[float]:
    conn = await KeepAlive.open(port)
    times = []
    for _ in range(count):
        began = time.perf_counter()
        assert (await conn.request("GET", "/v1/health")).status == 200
        times.append(time.perf_counter() - began)
    conn.close()
    return times


@pytest.mark.slow
@pytest.mark.gen_test(timeout=180)
async def test_10000_idle_keep_alive_connections_cost_at_most_12_kb_each(start_server):
    count = 10_000
    if raise_nofile(count + 2_000) < count + 1_000:
        pytest.skip("the descriptor limit is too low for 10,000 connections")
    server = start_server()  # inherits the raised limit
    warm: list[Any] = []
    for _ in range(2):  # let both sides allocate what a connection needs once
        warm += await asyncio.gather(*(KeepAlive.open(server.port) for _ in range(200)))
    await asyncio.gather(*(c.request("GET", "/v1/health") for c in warm))
    before_latency = await _latencies(server.port, 200)
    before = _rss_kib(server.pid)

    conns: list[KeepAlive] = []
    while len(conns) < count:
        batch = await asyncio.gather(*(KeepAlive.open(server.port) for _ in range(500)))
        replies = await asyncio.gather(*(c.request("GET", "/v1/health") for c in batch))
        assert {r.status for r in replies} == {200}
        conns += batch
    await asyncio.sleep(0.5)
    after = _rss_kib(server.pid)
    after_latency = await _latencies(server.port, 200)
    per_connection = (after - before) * 1024 / count
    p50_before, p50_after = statistics.median(before_latency), statistics.median(after_latency)
    print(f"\n{count} idle keep-alive connections: {per_connection / 1024:.1f} KiB each "
          f"(RSS {before} -> {after} KiB); median request {p50_before * 1000:.2f} -> {p50_after * 1000:.2f} ms")
    assert per_connection <= 12 * 1024
    assert p50_after < max(5 * p50_before, 0.005)  # active requests are not slowed by idle ones
    for conn in conns + warm:
        conn.close()
