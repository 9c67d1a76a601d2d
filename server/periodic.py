"""The application's background work: a coroutine run at an interval until stopped, which one failure never
ends (the revocation refresh, the role map refresh, the idempotency purge, the database node checks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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


def warn_failed(log: logging.Logger, what: str) -> Callable[[Exception], None]:
    """failed() for background work that the database being away makes fail: one WARNING line naming the
    exception's class ("idempotency purge failed: ServiceUnavailable"), no traceback, since a later round catches up
    and the outage itself is answered and logged where it happens."""

    def failed(exc: Exception) -> None:
        log.warning("%s failed: %s", what, exc.__class__.__name__)

    return failed


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
