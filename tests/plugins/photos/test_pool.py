"""The photos' process pool: real processes, really killed. Jobs run in another process at a lower priority; a
process that dies is replaced and its job tried once more, a second death is a 503/1008; too many waiting is a
503/1008 at once; closing leaves no process behind. Over HTTP on both backends: an upload whose decoding process
is killed is still stored, killed twice it answers 503/1008 JSON and the next upload works."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.errors import ServiceUnavailable
from server.plugins.photos.pool import NICENESS, ProcessPool
from tests.factories import Api, assert_error, both_backends, create_pet, user_with_token
from tests.plugins.photos import images
from tests.plugins.photos.processes import alive, own_pool_workers, wait_gone
from tests.plugins.photos.test_handlers import upload

BIG_JPEG_BYTES = 3_000_000  # noise: about a second of decoding on a loaded machine, time enough to kill it


def whoami() -> tuple[int, int]:
    """(pid, niceness) of the process running the job."""
    return os.getpid(), os.getpriority(os.PRIO_PROCESS, 0)


def die_once(marker: str) -> int:
    """Kill the process running it the first time (leaving a marker), answer its pid the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def wait_for(marker: str) -> int:
    """Hold the process until the marker file exists (at most 30 s); its pid."""
    deadline = time.monotonic() + 30
    while not Path(marker).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def spin(seconds: float) -> tuple[float, float]:
    """Keep a CPU busy for `seconds` of this process's CPU time; (start, end) by the wall clock."""
    start, cpu = time.time(), time.process_time()
    while time.process_time() - cpu < seconds:
        pass
    return start, time.time()


def raise_after(seconds: float) -> None:
    spin(seconds)
    raise ValueError("not an image")


@pytest.fixture
def pool() -> Iterator[ProcessPool]:
    made = ProcessPool(workers=1, max_waiting=1)
    yield made
    made.close()


def assert_unavailable(refused: ServiceUnavailable, message: str) -> None:
    assert (refused.status, refused.code, refused.headers) == (503, 1008, {"Retry-After": "5"})
    assert str(refused).startswith(message), str(refused)


@pytest.mark.gen_test(timeout=60)
async def test_a_job_runs_in_another_process_at_a_lower_priority_and_close_stops_it(pool):
    pid, niceness = await pool.run(whoami)
    assert pid != os.getpid() and alive(pid)
    assert niceness == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
    assert (await pool.run(whoami))[0] == pid  # the same process serves the next job
    pool.close()
    assert wait_gone([pid]) == []
    with pytest.raises(ServiceUnavailable) as closed:
        await pool.run(whoami)
    assert_unavailable(closed.value, "the server is stopping")


@pytest.mark.gen_test(timeout=60)
async def test_a_process_keeps_a_cpu_busy_at_most_its_share_and_callers_do_not_wait_for_the_pause():
    """cpu_share 0.25: after a job that took t seconds in its process the next starts at least 3t after it ended, so
    the photos leave the CPUs to the requests (a job that fails is counted too; the process's start is not); the
    job's caller has its answer before that pause is over."""
    pool = ProcessPool(workers=1, max_waiting=1, cpu_share=0.25)
    try:
        await pool.run(spin, 0.0)  # the process is started (not part of what is counted)
        first = await pool.run(spin, 0.3)
        answered = time.time()
        with pytest.raises(ValueError, match="not an image"):
            await pool.run(raise_after, 0.3)
        last = await pool.run(spin, 0.0)
    finally:
        pool.close()
    start, end = first
    took = end - start
    assert took >= 0.3
    assert answered - end < 3 * took, (first, answered)
    # first's pause (3 * took), the failing job (0.3 s or more) and its pause (3 * 0.3), one after the other
    assert last[0] - end >= 3 * took + 0.3 + 3 * 0.3, (first, last)
    with pytest.raises(ValueError, match="cpu_share must be in"):
        ProcessPool(workers=1, max_waiting=1, cpu_share=0)


@pytest.mark.gen_test(timeout=60)
async def test_a_process_that_dies_is_replaced_and_its_job_tried_once_more(pool, tmp_path):
    first, _ = await pool.run(whoami)
    second = await pool.run(die_once, str(tmp_path / "died"))
    assert (tmp_path / "died").read_text() == "died"
    assert second != first and not alive(first) and alive(second)
    assert pool.replaced == 1
    assert (await pool.run(whoami))[0] == second


@pytest.mark.gen_test(timeout=60)
async def test_a_job_whose_process_dies_twice_is_a_503_and_the_pool_serves_on(pool):
    with pytest.raises(ServiceUnavailable) as refused:
        await pool.run(die)
    assert_unavailable(refused.value, "the photo could not be processed: its worker process stopped twice")
    assert pool.replaced == 2
    pid, _ = await pool.run(whoami)
    assert alive(pid)


@pytest.mark.gen_test(timeout=60)
async def test_one_more_than_max_waiting_is_refused_at_once(pool, tmp_path):
    go = tmp_path / "go"
    running = asyncio.ensure_future(pool.run(wait_for, str(go)))  # holds the one process
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(pool.run(whoami))  # the one allowed to wait
    await asyncio.sleep(0.05)
    with pytest.raises(ServiceUnavailable) as refused:
        await pool.run(whoami)
    assert_unavailable(refused.value, "too many photos waiting to be processed")
    assert not running.done() and not waiting.done()
    go.write_text("go")
    pid = await running
    assert (await waiting)[0] == pid


@pytest.mark.gen_test(timeout=60)
async def test_a_job_that_waits_longer_than_max_wait_is_refused_and_frees_its_place(tmp_path):
    pool = ProcessPool(workers=1, max_waiting=1, max_wait=0.3)
    try:
        go = tmp_path / "go"
        running = asyncio.ensure_future(pool.run(wait_for, str(go)))  # holds the one process
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as refused:
            await pool.run(whoami)
        assert 0.29 <= time.monotonic() - started < 5
        assert_unavailable(refused.value, "the photo waited too long to be processed")
        waiting = asyncio.ensure_future(pool.run(whoami))  # its place in the queue is free again
        await asyncio.sleep(0.05)
        assert not running.done() and not waiting.done()
        go.write_text("go")
        pid = await running
        assert (await waiting)[0] == pid
    finally:
        pool.close()


async def kill_pool_worker(before: set[int]) -> int:
    """SIGKILL the first pool process not in `before` as soon as it appears (it has the upload's job or is about
    to: a pool process is made for a job); its pid."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = [p for p in own_pool_workers() if p not in before]
        if new:
            os.kill(new[0], signal.SIGKILL)
            return new[0]
        await asyncio.sleep(0.005)
    raise AssertionError("no pool process appeared")


def start_upload(api: Api, pet_id: int, token: str) -> asyncio.Future[Any]:
    """A large JPEG's upload, under way."""
    return asyncio.ensure_future(upload(api, pet_id, images.noisy_jpeg(BIG_JPEG_BYTES), "image/jpeg", token))


@both_backends
@pytest.mark.gen_test(timeout=120)
async def test_an_upload_survives_one_killed_process_and_answers_503_after_two(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/photo"
    sent = start_upload(api, pet["id"], token)
    killed = await kill_pool_worker(set())
    stored = await sent
    assert stored.status == 201, stored.body
    assert stored.body["data"]["width"] > 1000 and app.photos.pool.replaced == 1
    assert not alive(killed)

    sent = start_upload(api, pet["id"], token)
    first = await kill_pool_worker(set())
    await kill_pool_worker({first})
    refused = await sent
    assert_error(refused, 503, 1008, f"PUT {path}")
    assert refused.body["message"].startswith("the photo could not be processed"), refused.body
    assert refused.headers["Retry-After"] == "5"
    assert (await api.get(path, token=token)).headers["ETag"].startswith(stored.body["data"]["etag"][:-1])

    again = await start_upload(api, pet["id"], token)
    assert again.status == 200, again.body


@both_backends
@pytest.mark.parametrize("config_overrides", [{"plugin_settings": {"photos": {
    "photo_cpu_share": 0.05, "photo_queue_seconds": 0.5}}}])
@pytest.mark.gen_test(timeout=120)
async def test_an_upload_that_would_wait_past_photo_queue_seconds_is_503_and_stores_nothing(api, app):
    """After an image, the one photo process pauses 19x the time it took (a share of 0.05): an upload right behind it
    waits past photo_queue_seconds and is refused, with nothing stored; the client that retries after Retry-After
    gets its photo stored."""
    _, token = await user_with_token(app)
    first, second = await create_pet(api, token), await create_pet(api, token)
    stored = await start_upload(api, first["id"], token)
    assert stored.status == 201, stored.body
    path = f"/v1/pets/{second['id']}/photo"
    refused = await start_upload(api, second["id"], token)
    assert_error(refused, 503, 1008, f"PUT {path}")
    assert refused.body["message"].startswith("the photo waited too long to be processed"), refused.body
    assert refused.headers["Retry-After"] == "5"
    assert_error(await api.get(path, token=token), 404, 1002, f"GET {path}")
    pet = await api.get(f"/v1/pets/{second['id']}", token=token)
    assert pet.status == 200 and pet.body["data"]["photo"] is None, pet.body
    for _ in range(60):  # a client retrying (sooner than Retry-After: the test has no time to lose)
        again = await start_upload(api, second["id"], token)
        if again.status != 503:
            break
        await asyncio.sleep(1)
    assert again.status == 201, again.body
    assert again.body["data"]["width"] > 1000
