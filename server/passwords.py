"""argon2id hashing, always run in a worker thread so the event loop never waits on it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")


class Passwords:
    """Hash and verify; verify_absent() spends the same time when there is no account.

    The work runs in a pool of its own, one thread per CPU: more threads only make every hash slower
    and the event loop's thread wait longer for the GIL."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._dummy: str | None = None
        self._executor: ThreadPoolExecutor | None = None  # made on first use: after the worker forked

    def _run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="argon2")
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        """Let the hashing threads go."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def hash(self, password: str) -> str:
        """An argon2id hash of password."""
        return await self._run(self.hasher.hash, password)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str, password: str) -> bool:
        """True when password matches the stored hash."""
        return await self._run(self._verify, stored, password)

    async def verify_absent(self, password: str) -> bool:
        """Do the work of a verification against a dummy hash; always False."""
        if self._dummy is None:
            self._dummy = await self.hash("not-a-real-password-at-all")
        await self.verify(self._dummy, password)
        return False
