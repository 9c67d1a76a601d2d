"""Background work stops when the application stops, even when a round swallows its cancellation (a timeout
meeting the cancellation in asyncio.timeout, a library catching it): shutdown used to wait for ever then."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from server import periodic


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
