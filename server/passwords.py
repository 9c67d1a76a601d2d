"""argon2id hashing, always run in a worker thread so the event loop never waits on it; the work waiting for a
thread is bounded, and verifications (logins) go before new hashes (registrations, password changes)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.errors import ServiceUnavailable

T = TypeVar("T")
VERIFY, HASH = 0, 1  # priorities: a lower one is served first


class Passwords:
    """Hash and verify; verify_absent() spends the same time when there is no account.

    The work runs in a pool of its own, one thread per CPU: more threads only make every hash slower
    and the event loop's thread wait longer for the GIL. New hashes (registrations, password changes) use
    all threads but one, which stays for verifications (logins), and verifications waiting go first: a login
    waits for other logins, never behind a flood of registrations. Jobs beyond the threads wait in a queue of
    at most max_queued of each kind; one more is refused at once with 503 and Retry-After rather than make
    every caller wait."""

    def __init__(self, *, time_cost: int, memory_kib: int, max_queued: int = 16, retry_after: int = 5) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self.max_queued = max_queued
        self.retry_after = retry_after
        self.threads = os.cpu_count() or 1
        self.hash_threads = max(1, self.threads - 1)
        self._dummy: str | None = None
        self._executor: ThreadPoolExecutor | None = None  # made on first use: after the worker forked
        self._running = [0, 0]  # jobs on a thread, by priority
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap of (priority, arrival, turn)
        self._arrivals = itertools.count()

    def queued(self, priority: int) -> int:
        """Jobs of this priority waiting for a thread."""
        return sum(1 for p, _, turn in self._waiting if p == priority and not turn.done())

    def _may_start(self, priority: int) -> bool:
        return sum(self._running) < self.threads and (priority == VERIFY or self._running[HASH] < self.hash_threads)

    async def _run(self, priority: int, fn: Callable[..., T], *args: Any) -> T:
        if self._may_start(priority) and not self.queued(priority):
            self._running[priority] += 1
        else:
            if self.queued(priority) >= self.max_queued:
                raise ServiceUnavailable("too many password hashes waiting, try again later",
                                         headers={"Retry-After": str(self.retry_after)})
            turn = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._arrivals), turn))
            try:
                await turn  # _start_waiting counted it as running when it gave it the turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():  # cancelled after it was given its turn: pass it on
                    self._finished(priority)
                raise
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="argon2")
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._finished(priority)

    def _finished(self, priority: int) -> None:
        """A job of this priority left its thread: give the waiting jobs that may start their turn, in order."""
        self._running[priority] -= 1
        while self._waiting and self._may_start(self._waiting[0][0]):
            waiting_priority, _, turn = heapq.heappop(self._waiting)
            if not turn.done():  # a cancelled waiter is skipped
                self._running[waiting_priority] += 1
                turn.set_result(None)

    def close(self) -> None:
        """Let the hashing threads go."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def hash(self, password: str) -> str:
        """An argon2id hash of password (served after the verifications waiting; 503 when too many wait)."""
        return await self._run(HASH, self.hasher.hash, password)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str, password: str) -> bool:
        """True when password matches the stored hash (served first; 503 when too many wait)."""
        return await self._run(VERIFY, self._verify, stored, password)

    async def verify_absent(self, password: str) -> bool:
        """Do the work of a verification against a dummy hash; always False."""
        if self._dummy is None:
            self._dummy = await self._run(VERIFY, self.hasher.hash, "not-a-real-password-at-all")
        await self.verify(self._dummy, password)
        return False
