"""Workers on one port: a worker killed with SIGKILL is replaced while the port keeps answering, and /metrics
counts the requests of every worker (prometheus multiprocess mode)."""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.servers import PLUGINS_WITH_SLOW, KeepAlive, Load, wait_for
from tests.processes import Reply, ServerProcess, Servers, get

HEALTH = {"route": "/v1/health", "method": "GET", "status": "200"}


def serving(server: ServerProcess) -> list[int]:
    """Pids of the workers that logged "serving" (ready: listening, database pool up)."""
    return [line["worker"] for line in server.log_lines() if line["message"] == "serving"]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics parsed by prometheus-client: {(sample name, sorted labels): value}."""
    text = get(port, "/metrics").body.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def start_two_workers(servers: Servers, tmp_path: Path, **env: str) -> ServerProcess:
    server = servers.start(workers=2, TMPDIR=str(tmp_path), **env)  # the metrics directory is made under TMPDIR
    wait_for(lambda: len(serving(server)) == 2, "both workers serving")
    return server


def test_metrics_count_the_requests_of_every_worker(servers, tmp_path):
    server = start_two_workers(servers, tmp_path)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: get(server.port, "/v1/health").status, range(400)))
    assert statuses == [200] * 400

    def requests_per_worker() -> dict[int, float]:  # read from each worker's own file in the metrics directory
        counts = {}
        for path in glob.glob(str(tmp_path / "pet-api-metrics-*" / "counter_*.db")):
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for m in MultiProcessCollector.merge([path]) for s in m.samples}
            counts[int(Path(path).stem.split("_")[1])] = samples.get(key("pet_api_requests_total", **HEALTH), 0)
        return counts

    # The access log and metrics are written just after the response is sent: allow a moment.
    wait_for(lambda: sum(requests_per_worker().values()) == 400, "400 requests counted", within=5)
    per_worker = requests_per_worker()
    assert sorted(per_worker) == sorted(serving(server))
    assert all(count > 0 for count in per_worker.values()), per_worker  # both workers served some

    for _ in range(6):  # whichever worker answers the scrape reports everyone's requests
        metrics = scrape(server.port)
        assert metrics[key("pet_api_requests_total", **HEALTH)] == 400
        assert metrics[key("pet_api_request_duration_seconds_count", **HEALTH)] == 400
        assert metrics[key("pet_api_workers")] == 2
        assert metrics[key("pet_api_requests_in_flight")] >= 1  # this scrape
        assert metrics[key("pet_api_db_pool_connections", state="idle")] >= 1
    print(f"\nrequests per worker: {sorted(per_worker.values())}")


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(servers, tmp_path):
    server = start_two_workers(servers, tmp_path)
    with Load(server.port, "/v1/health/ready") as load:
        time.sleep(0.5)
        victim = server.workers()[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: len(serving(server)) == 3, "a replacement worker serving")
        replaced_at = time.monotonic()
        time.sleep(1)
    assert victim not in server.workers() and len(server.workers()) == 2
    after = [o for o in load.outcomes if o.at > killed_at]
    # At most the requests the victim held when it died (one per client thread) can fail.
    assert len(load.failures) <= load.threads, load.failures
    assert len(after) >= 20 and all(o.ok for o in after[-10:])
    died = [line for line in server.log_lines() if line["message"] == "worker died: replacing it"]
    assert [(d["worker"], d["exit_code"]) for d in died] == [(victim, -signal.SIGKILL)]
    assert scrape(server.port)[key("pet_api_workers")] == 2  # the dead worker's live gauges are gone
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    print(f"\nSIGKILL of a worker under load: replaced in {replaced_at - killed_at:.2f} s, "
          f"{len(load.outcomes)} requests, {len(load.failures)} failed")


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_to_the_supervisor_drains_every_worker_and_replaces_none(servers, tmp_path):
    server = start_two_workers(servers, tmp_path, PET_API_PLUGINS=PLUGINS_WITH_SLOW)
    conns = [await KeepAlive.open(server.port) for _ in range(40)]
    slow = [asyncio.ensure_future(c.request("GET", "/test/slow?ms=1500")) for c in conns]
    deadline = time.monotonic() + 20
    while scrape(server.port)[key("pet_api_requests_in_flight")] < 41:  # all in flight (the gauges are
        assert time.monotonic() < deadline  # published every second by each worker)
        await asyncio.sleep(0.1)

    server.signal(signal.SIGTERM)
    replies = await asyncio.gather(*slow, return_exceptions=True)
    assert [r for r in replies if not isinstance(r, Reply) or r.status != 200] == []
    assert {r.headers["connection"] for r in replies} == {"close"}
    assert await asyncio.to_thread(server.wait, 30) == 0
    messages = [line["message"] for line in server.log_lines()]
    assert messages.count("stopped") == 2  # each worker drained
    assert "worker died: replacing it" not in messages  # no replacement during the shutdown
    assert messages[-1] == "all workers stopped"
    assert not list(tmp_path.glob("pet-api-metrics-*"))  # this run's metrics directory is removed


@pytest.mark.gen_test(timeout=60)
async def test_sighup_to_the_supervisor_drains_every_worker_and_exits_129(servers, tmp_path):
    server = start_two_workers(servers, tmp_path, PET_API_PLUGINS=PLUGINS_WITH_SLOW)
    conns = [await KeepAlive.open(server.port) for _ in range(4)]
    slow = [asyncio.ensure_future(c.request("GET", "/test/slow?ms=1500")) for c in conns]
    deadline = time.monotonic() + 20
    while scrape(server.port)[key("pet_api_requests_in_flight")] < 5:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)

    server.signal(signal.SIGHUP)
    replies = await asyncio.gather(*slow, return_exceptions=True)
    assert [(r.status, r.headers["connection"]) for r in replies if isinstance(r, Reply)] == [(200, "close")] * 4
    assert await asyncio.to_thread(server.wait, 30) == 128 + signal.SIGHUP
    messages = [line["message"] for line in server.log_lines()]
    assert messages.count("stopped") == 2 and "worker died: replacing it" not in messages
    assert messages[-1] == "all workers stopped"
