"""The application's background work: a coroutine run at an interval until stopped, which one failure never
ends (the revocation refresh, the role map refresh, the idempotency purge, the database node checks)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any


def start_every(interval: Callable[[], float], work: Callable[[], Awaitable[object]],
                failed: Callable[[Exception], None]) -> asyncio.Task[None]:
    """Run work() after each sleep of interval() seconds (asked anew each round); failed(exc) is called from
    inside the except block (so log.exception has the traceback), and the next round tries again."""

    async def rounds() -> None:
        task = asyncio.current_task()
        while True:
            await asyncio.sleep(interval())
            try:
                await work()
            except Exception as exc:
                failed(exc)
            if task is not None and task.cancelling():  # a cancellation work() swallowed: honour it now
                raise asyncio.CancelledError

    return asyncio.get_running_loop().create_task(rounds())


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has ended. A cancellation can be lost on the way (one that meets
    a timeout's own in asyncio.timeout, or a library that catches it): it is asked again each second."""
    if task is None:
        return
    task.cancel()
    while not (await asyncio.wait([task], timeout=1.0))[0]:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
