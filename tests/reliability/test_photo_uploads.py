"""20 concurrent 5 MB photo uploads while another client reads pets: every request is answered, the reader keeps
its latency, the event loop is never held long (decoding runs in the photos' pool) and the worker's memory comes
back. Figures are printed (README, Photos), not asserted as timings: CI machines are shared."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import migrated_database, run_async
from tests.factories import Api, create_pet, user_with_token
from tests.plugins.photos import images, processes
from tests.processes import ServerProcess, clean_env, login
from tests.reliability.conftest import wide_api
from tests.reliability.pet_reader import ReaderProcess

UPLOADS = 20
UPLOAD_BYTES = 4_700_000  # noise: the JPEG comes out at about 5 MB
# Seconds an upload of the burst may take, and may wait for the photo process (photo_queue_seconds, 30 by default):
# the photo processes' CPU budget (photo_cpu_share) spreads the burst, so the last one waits for every other image and
# its pause, and a slow machine stretches each (the burst took 35-39 s on one). This test is about the readers.
UPLOAD_TIMEOUT = 240
PATIENT = {"plugin_settings": {"photos": {"photo_queue_seconds": UPLOAD_TIMEOUT}}}
IDLE_READS = 3000  # a p99 of 300 reads is the third longest: it moved 0.7-4 ms from run to run
MIB = 1024 * 1024


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 2 else samples[0]


async def read_pets(api: Api, path: str, token: str, until: asyncio.Event | None, count: int = 0) -> list[float]:
    """GET path one after another (count times, or until the event is set); each answer's seconds."""
    took = []
    while (until is None and len(took) < count) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        response = await api.get(path, token=token)
        took.append(time.perf_counter() - started)
        assert response.status == 200, response.body
    return took


async def upload_all(api: Api, pets: list[int], token: str, body: bytes) -> list[int]:
    async def one(pet_id: int) -> int:
        response = await api.request("PUT", f"/v1/pets/{pet_id}/photo", body=body, token=token,
                                     headers={"Content-Type": "image/jpeg"},
                                     request_timeout=UPLOAD_TIMEOUT)
        return response.status

    return list(await asyncio.gather(*(one(p) for p in pets)))


async def under_load(api: Api, reader: Api, pets: list[int], token: str, body: bytes) -> tuple[list[float],
                                                                                              list[int], float]:
    """The reader's latencies while the uploads run, the uploads' statuses and their wall time."""
    done = asyncio.Event()
    reads = asyncio.ensure_future(read_pets(reader, f"/v1/pets/{pets[0]}", token, done))
    started = time.perf_counter()
    statuses = await upload_all(api, pets, token, body)
    elapsed = time.perf_counter() - started
    done.set()
    return await reads, statuses, elapsed


@contextlib.contextmanager
def timed_callbacks() -> Iterator[list[float]]:
    """Measure the CPU time of every event-loop callback of this thread (test instrumentation: asyncio runs each
    ready callback through Handle._run); yields the list the durations are added to."""
    run = asyncio.events.Handle._run
    durations: list[float] = []

    def timed(handle: asyncio.Handle) -> None:
        started = time.thread_time()
        try:
            run(handle)
        finally:
            durations.append(time.thread_time() - started)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    try:
        yield durations
    finally:
        asyncio.events.Handle._run = run  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def database_url(mysql_server_url: str) -> str:
    return migrated_database(mysql_server_url, "photo_uploads")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("photos") / "server.log", clean_env(
            PET_API_DATABASE_URL=database_url, PET_API_DB_STATEMENT_TIMEOUT="10",
            PET_API_PHOTOS__PHOTO_QUEUE_SECONDS=str(UPLOAD_TIMEOUT))) as proc:
        yield proc


def pool_pss_kib(server: ServerProcess) -> int:
    """Proportional memory of the processes the server started (fork server, resource tracker, photo processes)."""
    return sum(processes.pss_kib(p) for p in processes.in_session(server.pid) if p != server.pid)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


@pytest.mark.slow
def test_uploads_leave_readers_served_and_memory_as_it_was(server: ServerProcess, tmp_path: Path) -> None:
    _, token = login(server.port)
    body = images.noisy_jpeg(UPLOAD_BYTES)

    async def scenario() -> dict[str, Any]:
        api = wide_api(f"http://127.0.0.1:{server.port}")
        pets = [(await create_pet(api, token, name=f"Pet {i}"))["id"] for i in range(UPLOADS)]
        assert await upload_all(api, pets[:2], token, body) == [201, 201]  # warm: the pool's process, Pillow
        await asyncio.sleep(0.5)
        rss_start, pool_start = server.rss_kib(), pool_pss_kib(server)
        path = f"/v1/pets/{pets[0]}"
        idle = ReaderProcess(server.port, path, token, IDLE_READS).results()
        reader = ReaderProcess(server.port, path, token)
        started, ticks = time.perf_counter(), processes.cpu_ticks(server.pid)
        statuses = await upload_all(api, pets, token, body)
        elapsed, ticks = time.perf_counter() - started, processes.cpu_ticks(server.pid) - ticks
        peak, pool_peak = server.rss_kib(), pool_pss_kib(server)
        loaded = reader.results()
        await asyncio.sleep(2.0)
        return {"idle": idle["took"], "loaded": loaded["took"], "statuses": statuses, "elapsed": elapsed,
                "worker_cpu": ticks / os.sysconf("SC_CLK_TCK"),
                "reads": idle["statuses"] + loaded["statuses"], "rss_start": rss_start, "rss_peak": peak,
                "rss_end": server.rss_kib(), "pool_start": pool_start, "pool_peak": pool_peak,
                "pool_end": pool_pss_kib(server)}

    got = run_async(scenario())
    idle, loaded = got["idle"], got["loaded"]
    print(f"\n{UPLOADS} uploads of {len(body) / 1e6:.2f} MB in {got['elapsed']:.2f} s; reader (own process): idle "
          f"p50 {ms(statistics.median(idle))} p99 {ms(p99(idle))}; during the uploads {len(loaded)} reads, p50 "
          f"{ms(statistics.median(loaded))} p99 {ms(p99(loaded))} max {ms(max(loaded))} (p99 ratio "
          f"{p99(loaded) / p99(idle):.2f}); worker CPU during the uploads {got['worker_cpu']:.2f} s; worker RSS "
          f"{got['rss_start'] / 1024:.1f} MiB before, "
          f"{got['rss_peak'] / 1024:.1f} MiB at the end of the uploads, {got['rss_end'] / 1024:.1f} MiB 2 s later; "
          f"the processes it started (PSS) {got['pool_start'] / 1024:.1f}, {got['pool_peak'] / 1024:.1f}, "
          f"{got['pool_end'] / 1024:.1f} MiB")
    assert set(got["reads"]) == {200}
    assert got["statuses"] == [200, 200] + [201] * (UPLOADS - 2)
    assert loaded, "the reader got no answer while the uploads ran"
    assert (got["rss_end"] - got["rss_start"]) * 1024 < 50 * MIB, got
    assert "Traceback" not in server.output()


def upload_one(server: ServerProcess) -> None:
    """A photo stored through the server (so its pool's processes run)."""
    _, token = login(server.port)
    pet = server.request("POST", "/v1/pets", json={"name": "Rex", "species": "dog"}, token=token)
    assert pet.status == 201, pet.body
    stored = server.request("PUT", f"/v1/pets/{pet.json()['data']['id']}/photo", body=images.jpeg_with_gps_rotated(),
                            token=token, headers={"Content-Type": "image/jpeg"})
    assert stored.status == 201, stored.body


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "signum", "code"), [(1, signal.SIGKILL, -signal.SIGKILL),
                                                          (2, signal.SIGTERM, 0)])
def test_no_process_outlives_the_server(database_url: str, tmp_path: Path, workers: int, signum: int,
                                        code: int) -> None:
    """Stopped (SIGTERM: the workers drain and stop their pools) or killed (SIGKILL: the photo processes see their
    parent gone and exit, then the fork server and the resource tracker, whose pipes they held, end), nothing the
    server started is left running."""
    with ServerProcess(tmp_path / "server.log", clean_env(PET_API_DATABASE_URL=database_url),
                       workers=workers) as server:
        upload_one(server)
        started = [p for p in processes.in_session(server.pid) if p != server.pid]
        photo_processes = processes.pool_workers(server.pid)
        assert len(photo_processes) == 1, (started, photo_processes)
        server.signal(signum)
        assert server.wait(30) == code, server.output()[-3000:]
        assert processes.wait_gone(started) == [], [processes.cmdline(p) for p in started]
    assert "Traceback" not in server.output()


@pytest.mark.slow
@pytest.mark.parametrize("config_overrides", [PATIENT])
@pytest.mark.gen_test(timeout=UPLOAD_TIMEOUT + 60)
async def test_the_event_loop_is_never_held_long_during_uploads(app, http_server, base_url):
    """In-process, so the loop's own thread can be watched: the CPU it spends between two turns of a 1 ms ticker
    bounds the longest callback (decoding and encoding run in the photos' pool threads)."""
    _, token = await user_with_token(app)
    api, reader = wide_api(base_url), wide_api(base_url, max_clients=2)
    pets = [(await create_pet(api, token, name=f"Pet {i}"))["id"] for i in range(UPLOADS)]
    body = images.noisy_jpeg(UPLOAD_BYTES)
    assert await upload_all(api, pets[:2], token, body) == [201, 201]
    gc.collect()
    stalls: list[float] = []  # wall time past the 1 ms sleep: how long the loop took to come back
    watching = True

    async def ticker() -> None:
        while watching:
            wall = time.perf_counter()
            await asyncio.sleep(0.001)
            stalls.append(time.perf_counter() - wall - 0.001)

    with timed_callbacks() as durations:
        watch = asyncio.ensure_future(ticker())
        loaded, statuses, elapsed = await under_load(api, reader, pets, token, body)
        watching = False
        await watch
    over = [d for d in durations if d > 0.001]
    print(f"\nin-process: {UPLOADS} uploads in {elapsed:.2f} s, {len(loaded)} reads (p99 {p99(loaded) * 1000:.2f} ms); "
          f"event loop: {len(durations)} callbacks, longest {max(durations) * 1000:.2f} ms of CPU, {len(over)} over "
          f"1 ms ({sum(over) * 1000:.0f} ms in all), all of them {sum(durations):.2f} s; longest turn of a 1 ms ticker "
          f"{max(stalls) * 1000:.2f} ms late (the client's 5 MB sends and the server's reads share this loop)")
    assert statuses == [200, 200] + [201] * (UPLOADS - 2)
    assert loaded and len(stalls) > UPLOADS
