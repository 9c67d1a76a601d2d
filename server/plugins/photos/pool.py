"""A pool of worker processes for the photos' decoding and encoding: the event loop's process only sends the bytes
and waits, so Pillow never holds that process's GIL nor takes its CPU.

The processes are forked by multiprocessing's fork server (started on first use, with `preload` imported once, so a
replacement is ready in tens of milliseconds), run at a lower CPU priority than the event loop's, ignore the
terminal's Ctrl-C (their parent decides when they stop) and exit when their parent is gone. At most `workers` jobs
are in the processes at once and at most `max_waiting` wait for their turn (more: 503/1008 at once), so the memory
held is bounded, each for at most `max_wait` seconds (longer: 503/1008, so the client has an answer before its own
timeout gives up on an upload that would be stored later); each process keeps at most `cpu_share` of a CPU busy on
average (after a job that took t seconds in its process, its slot opens t * (1/cpu_share - 1) seconds later; the
job's caller has its answer at once); a second after the last job, the memory the bodies and results took is given
back to the system (in a thread). A process that dies (OOM kill, crash) breaks the pool: a new one replaces it and
each job it took is tried once more; a second death answers 503/1008."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from server.errors import ServiceUnavailable

T = TypeVar("T")
log = logging.getLogger("pet_api.photos")
NICENESS = 10  # below the event loop's process: a decode yields the CPU to a request's turn
RETRY_AFTER = "5"  # seconds, as the other 503s answer (Config.retry_after's default)
TRIM_AFTER = 1.0  # seconds of an idle pool before the event loop's process gives its freed memory back


def release_memory() -> None:
    """Give the pages malloc keeps after large frees back to the system (glibc's malloc_trim; elsewhere nothing):
    its dynamic mmap threshold grows past an image's size, so bodies and renditions land in the arenas."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _start_worker(niceness: int) -> None:
    """Each pool process's initializer: lower priority, no SIGINT, and an exit as soon as the process that made the
    pool is gone (killed: nothing else would stop it, as the fork server stays while its children live)."""
    try:
        os.nice(niceness)
    except OSError as exc:  # refused (the systemd unit's SystemCallFilter=~@resources): still works, same priority
        log.warning("photo process: its CPU priority stays the event loop's (%s)", exc)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent drains
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _measured(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    """fn(*args), in a pool process, with the seconds it took there (a raised exception carries them as
    `photo_pool_seconds`): what the pool's cpu_share counts. Not the process's start nor the trip of the arguments
    and the result; its waits for a core, yes: a busier machine gets longer pauses."""
    started = time.perf_counter()
    try:
        result = fn(*args)
    except Exception as exc:
        with contextlib.suppress(AttributeError):  # an exception without a __dict__ goes as it is
            exc.photo_pool_seconds = time.perf_counter() - started  # type: ignore[attr-defined]
        raise
    return time.perf_counter() - started, result


def _exit_with(parent: BaseProcess) -> None:
    parent.join()  # its sentinel: a pipe that ends when the parent's process does
    os._exit(1)


class ProcessPool:
    """Run picklable functions in worker processes (see the module docstring); made unstarted, so it may be built
    before the serving process forks its workers."""

    def __init__(self, *, workers: int, max_waiting: int, preload: Sequence[str] = (),
                 niceness: int = NICENESS, cpu_share: float = 1.0, max_wait: float | None = None) -> None:
        if not 0 < cpu_share <= 1:
            raise ValueError(f"cpu_share must be in (0, 1], not {cpu_share}")
        self.workers = workers
        self.max_waiting = max_waiting
        self.preload = list(preload)
        self.niceness = niceness
        self.cpu_share = cpu_share
        self.max_wait = max_wait  # seconds a job may wait for a slot; None: as long as it takes
        self.replaced = 0  # pools replaced after a process died
        self._executor: ProcessPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None  # made in the loop that uses it
        self._waiting = 0
        self._running = 0
        self._trim: asyncio.TimerHandle | None = None
        self._closed = False

    def _current(self) -> ProcessPoolExecutor:
        if self._closed:
            raise ServiceUnavailable("the server is stopping", headers={"Retry-After": RETRY_AFTER})
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            if self.preload:  # only heard by a fork server not running yet (one per process, multiprocessing's)
                context.set_forkserver_preload(self.preload)
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                                 initargs=(self.niceness,))
        return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is broken:  # the first of its jobs to notice; the others retry on the new one
            self._executor = None
            self.replaced += 1
            broken.shutdown(wait=False, cancel_futures=True)
            log.warning("a photo worker process died: its pool is replaced")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a worker process, once a slot is free; 503/1008 when too many wait, when no slot frees within
        max_wait or when the process running it dies twice."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        if self._slots.locked() and self._waiting >= self.max_waiting:
            raise ServiceUnavailable("too many photos waiting to be processed, try again later",
                                     headers={"Retry-After": RETRY_AFTER})
        self._waiting += 1
        try:
            async with asyncio.timeout(self.max_wait):
                await self._slots.acquire()
        except TimeoutError:
            raise ServiceUnavailable("the photo waited too long to be processed, try again later",
                                     headers={"Retry-After": RETRY_AFTER}) from None
        finally:
            self._waiting -= 1
        self._running += 1
        took = 0.0
        try:
            for _ in range(2):
                executor = self._current()
                try:
                    took, result = await asyncio.get_running_loop().run_in_executor(executor, _measured, fn, *args)
                    return result
                except BrokenProcessPool:
                    self._replace(executor)
                except Exception as exc:
                    took = getattr(exc, "photo_pool_seconds", 0.0)
                    raise
            raise ServiceUnavailable("the photo could not be processed: its worker process stopped twice, try "
                                     "again later", headers={"Retry-After": RETRY_AFTER})
        finally:
            self._running -= 1
            pause = took * (1 / self.cpu_share - 1)
            if pause > 0:  # the slot stays closed, the caller goes on
                asyncio.get_running_loop().call_later(pause, self._slots.release)
            else:
                self._slots.release()
            if not self._running and not self._waiting:
                self._trim_later()

    def _trim_later(self) -> None:
        if self._trim is not None:
            self._trim.cancel()
        loop = asyncio.get_running_loop()
        self._trim = loop.call_later(TRIM_AFTER, self._trim_if_idle, loop)

    def _trim_if_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        self._trim = None
        if not self._running and not self._waiting and not self._closed:
            loop.run_in_executor(None, release_memory)  # malloc_trim releases the GIL; it takes milliseconds

    def close(self) -> None:
        """Let the jobs in the processes finish (the drain left none waiting), then stop the processes."""
        self._closed = True
        if self._trim is not None:
            self._trim.cancel()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
