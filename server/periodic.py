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
        while True:
            await asyncio.sleep(interval())
            try:
                await work()
            except Exception as exc:
                failed(exc)

    return asyncio.get_running_loop().create_task(rounds())


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
