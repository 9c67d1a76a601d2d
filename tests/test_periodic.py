"""Background work stops when the application stops, even when a round swallows its cancellation (a timeout
meeting the cancellation in asyncio.timeout, a library catching it): shutdown used to wait for ever then."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from server import periodic
from server.errors import ServiceUnavailable


@pytest.mark.gen_test(timeout=10)
async def test_stop_ends_a_task_whose_round_swallowed_the_cancellation():
    rounds: list[str] = []
    entered = asyncio.Event()

    async def stubborn() -> None:
        rounds.append("round")
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # what a library mishandling a cancel looks like
            await asyncio.sleep(0.5 if len(rounds) == 1 else 0)

    task = periodic.start_every(lambda: 0.01, stubborn, lambda exc: None)
    await entered.wait()
    stopping = asyncio.ensure_future(periodic.stop(task))
    assert (await asyncio.wait([stopping], timeout=5))[0], "stop() still waits for the task"  # it was for ever
    assert task.done() and task.cancelled(), task
    count = len(rounds)
    await asyncio.sleep(0.1)
    assert len(rounds) == count  # no round after the stop


@pytest.mark.gen_test(timeout=10)
async def test_stop_asks_again_when_a_cancellation_is_lost_while_sleeping():
    entered = asyncio.Event()

    async def forgetful() -> None:
        if entered.is_set():
            return
        entered.set()
        task = asyncio.current_task()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.5)
        if task is not None:
            task.uncancel()  # as asyncio.timeout does when it takes a cancellation for its own

    task = periodic.start_every(lambda: 0.01, forgetful, lambda exc: None)
    await entered.wait()
    stopping = asyncio.ensure_future(periodic.stop(task))
    assert (await asyncio.wait([stopping], timeout=5))[0], "stop() still waits for the task"  # it was for ever
    assert task.done() and task.cancelled(), task


@pytest.mark.gen_test(timeout=10)
async def test_a_round_that_meets_an_outage_is_one_warning_line_and_the_next_round_runs(caplog):
    rounds: list[str] = []
    second = asyncio.Event()

    async def purge() -> None:
        rounds.append("round")
        if len(rounds) == 1:
            raise ServiceUnavailable()
        second.set()

    with caplog.at_level(logging.WARNING, logger="pet_api.test"):
        task = periodic.start_every(lambda: 0.01, purge, periodic.warn_failed(logging.getLogger("pet_api.test"),
                                                                              "test purge"))
        await second.wait()
        await periodic.stop(task)
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records if r.name == "pet_api.test"] == [
        ("WARNING", "test purge failed: ServiceUnavailable", None)]
