"""The photo pool's processes as Linux shows them (/proc): found, watched and killed by the tests, never mocked."""

from __future__ import annotations

import os
import time
from pathlib import Path

FORKSERVER = "multiprocessing.forkserver"


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state first), or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of the process, in clock ticks (0 once it is gone)."""
    fields = _stat(pid)
    return 0 if fields is None else int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    """The live children of a process (of all its threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return [p for p in found if alive(p)]


def descendants(pid: int) -> list[int]:
    """Children, their children, and so on."""
    found = children(pid)
    return found + [d for child in found for d in descendants(child)]


def in_session(sid: int) -> list[int]:
    """Live processes of a session (a server started in a session of its own: itself and all it started, even
    those whose parent died)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[3]) == sid and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def pss_kib(pid: int) -> int:
    """Proportional resident memory (pages shared with n processes count 1/n: a fork server's children share its
    imports), 0 once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("Pss:")), 0)


def pool_workers(pid: int) -> list[int]:
    """The photo pool's processes under this one: the children of its multiprocessing fork server."""
    servers = [p for p in descendants(pid) if FORKSERVER in cmdline(p)]
    return [worker for server in servers for worker in children(server)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    """Wait until none of these processes is alive; those still alive at the timeout."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def own_pool_workers() -> list[int]:
    """The photo pool's processes of this (test) process's in-process applications."""
    return pool_workers(os.getpid())
