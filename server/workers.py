"""Several workers on the shared listening sockets: the supervisor forks them, replaces any that dies, forwards
SIGTERM/SIGINT and waits for all to drain, and speaks for them to systemd: READY=1 once every worker is ready,
WATCHDOG=1 only while every worker's event loop keeps beating (a stuck worker trips the service watchdog)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable

from server.config import Config
from server.runtime import Runtime
from server.sdnotify import READY, STOPPING, WATCHDOG, Notifier, Report

log = logging.getLogger("pet_api.workers")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
SIGNALS = (*STOP_SIGNALS, signal.SIGCHLD)
PR_SET_PDEATHSIG = 1
STOP_MARGIN = 5.0  # seconds past shutdown_timeout before stragglers are killed
WorkerMain = Callable[[Config, Runtime, list[socket.socket], Report, float | None], int]


def exit_code(signum: int) -> int:
    """After a drain: 0 for SIGTERM/SIGINT; 129 for SIGHUP, which is no reload (the configuration is read at start
    only) but a graceful restart: systemd's Restart=on-failure starts the service again."""
    return 128 + signum if signum == signal.SIGHUP else 0


class _Worker:
    __slots__ = ("pid", "fd", "ready", "last_beat")

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self.ready = False
        self.last_beat = time.monotonic()


def pipe_reporter(fd: int) -> Report:
    """A worker's reports to its supervisor: one line per message ("READY\n") on its beat pipe (a write under
    PIPE_BUF bytes arrives whole)."""
    def report(message: str) -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(fd, f"{message}\n".encode())

    return report


class Supervisor:
    """The parent process of `count` workers (see the module docstring)."""

    def __init__(self, config: Config, runtime: Runtime, sockets: list[socket.socket], count: int,
                 worker_main: WorkerMain) -> None:
        self.config = config
        self.runtime = runtime
        self.sockets = sockets
        self.count = count
        self.worker_main = worker_main
        self.workers: dict[int, _Worker] = {}
        self.selector = selectors.DefaultSelector()
        self.notifier = Notifier(runtime.notify_socket, ready_status=f"serving with {count} workers")
        timeout = runtime.watchdog_timeout
        self.watchdog_timeout = timeout
        self.beat_interval = timeout / 4 if timeout else None
        self.stopping = False
        self.ready_sent = False
        self.exit_code = 0
        self.kill_at = 0.0
        self.last_ping = 0.0
        self.respawn_at: list[float] = []
        self.failures = 0  # consecutive replacements that died before getting ready
        self.stuck_logged = False

    def run(self) -> int:
        """Fork the workers and supervise them until they have all stopped; the exit code."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake = (wake_r, wake_w)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in SIGNALS:
            signal.signal(sig, lambda *_: None)  # the wakeup fd tells the loop which signal came
        try:
            for _ in range(self.count):
                self._spawn()
            log.info("supervising workers", extra={"workers": self.count})
            return self._loop()
        finally:
            for worker in self.workers.values():  # only after an unexpected error in the loop
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(previous_wakeup)
            self.selector.close()
            os.close(wake_r)
            os.close(wake_w)
            self.notifier.close()

    # ---- the loop
    def _loop(self) -> int:
        while True:
            for key, _ in self.selector.select(self._timeout()):
                if key.data is None:
                    for signum in _read_all(key.fd):
                        forced = self._on_signal(signum)
                        if forced is not None:
                            return forced
                else:
                    self._on_message(key.data, key.fd)
            self._reap()
            now = time.monotonic()
            if self.stopping:
                if not self.workers:
                    log.info("all workers stopped", extra={"exit_code": self.exit_code})
                    return self.exit_code
                if now >= self.kill_at:
                    log.warning("workers still running past the drain deadline: killing them")
                    self._signal_all(signal.SIGKILL)
            while self.respawn_at and self.respawn_at[0] <= now and not self.stopping:
                self.respawn_at.pop(0)
                self._spawn()
            self._tell_systemd(now)

    def _timeout(self) -> float:
        timeout = self.beat_interval or 1.0
        if self.respawn_at:
            timeout = min(timeout, max(0.0, self.respawn_at[0] - time.monotonic()))
        return min(timeout, 1.0)

    def _on_signal(self, signum: int) -> int | None:
        if signum == signal.SIGCHLD:
            return None  # reaped below
        if self.stopping:
            log.warning("second signal: killing the workers without waiting", extra={"signal": signum})
            self._signal_all(signal.SIGKILL)
            while self.workers:
                pid, _ = os.waitpid(-1, 0)
                self._forget(pid)
            return 128 + signum
        log.info("stopping: draining every worker", extra={"signal": signum})
        self._stop_all()
        self.exit_code = exit_code(signum)
        return None

    def _stop_all(self) -> None:
        self.stopping = True
        self.respawn_at.clear()
        self.notifier.report(STOPPING)
        self.kill_at = time.monotonic() + self.config.shutdown_timeout + STOP_MARGIN
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signum)

    def _on_message(self, worker: _Worker, fd: int) -> None:
        data = _read_all(fd)
        if not data:  # the worker closed its end (it is exiting): stop watching
            self.selector.unregister(fd)
            return
        worker.last_beat = time.monotonic()  # any report is a beat
        if READY.encode() in data.split(b"\n"):
            worker.ready = True
            self.failures = 0

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._forget(pid)
            if worker is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                if code != 0 and self.exit_code == 0:
                    self.exit_code = 1
                continue
            if not worker.ready and not self.ready_sent:
                log.error("a worker failed to start: stopping", extra={"worker": pid, "exit_code": code})
                self.exit_code = code if code > 0 else 1
                self._stop_all()
                continue
            delay = 0.0
            if not worker.ready:  # a replacement that cannot start (database down?): back off
                self.failures += 1
                delay = min(2.0 ** self.failures, 30.0)
            log.warning("worker died: replacing it", extra={"worker": pid, "exit_code": code, "delay": delay})
            self.respawn_at.append(time.monotonic() + delay)
            self.respawn_at.sort()

    def _forget(self, pid: int) -> _Worker | None:
        worker = self.workers.pop(pid, None)
        if worker is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.fd)
            os.close(worker.fd)
            from prometheus_client import multiprocess

            # its live gauges (in flight, pool) leave the sums
            multiprocess.mark_process_dead(pid, self.runtime.metrics_dir)
        return worker

    def _tell_systemd(self, now: float) -> None:
        if not self.ready_sent and not self.stopping and len(self.workers) == self.count \
                and all(w.ready for w in self.workers.values()):
            self.ready_sent = True
            self.notifier.report(READY)
        if self.watchdog_timeout is None or now - self.last_ping < self.watchdog_timeout / 2:
            return
        stuck = [w.pid for w in self.workers.values() if w.ready and now - w.last_beat >= self.watchdog_timeout / 2]
        if stuck:
            if not self.stuck_logged:
                log.error("a worker's event loop is blocked: withholding the watchdog", extra={"worker": stuck[0]})
                self.stuck_logged = True
            return
        self.stuck_logged = False
        self.last_ping = now
        self.notifier.report(WATCHDOG)

    # ---- the workers
    def _spawn(self) -> None:
        beat_r, beat_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(beat_r)
            self._become_worker(parent, beat_w)
        os.close(beat_w)
        worker = self.workers[pid] = _Worker(pid, beat_r)
        self.selector.register(beat_r, selectors.EVENT_READ, worker)

    def _become_worker(self, parent: int, beat_w: int) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            # Our own process group: a terminal's Ctrl-C reaches the supervisor alone, which forwards one SIGTERM
            # (a worker getting the group's signal too would take the forwarded one as a second, "exit now").
            os.setpgid(0, 0)
            _die_with_parent(parent)
            self.selector.close()
            for fd in (*self.wake, *(w.fd for w in self.workers.values())):
                os.close(fd)
            self.notifier.close()
            code = self.worker_main(self.config, self.runtime.for_worker(), self.sockets, pipe_reporter(beat_w),
                                    self.beat_interval)
        except BaseException:
            log.exception("worker crashed")
        finally:
            logging.shutdown()
            os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _die_with_parent(parent: int) -> None:
    """SIGTERM (a graceful drain) when the supervisor dies without stopping us (kill -9 outside systemd)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
