"""What differs between processes of one deployment, read from the environment once by the process entry point
(serve.serve) and handed down: systemd's sockets and notify socket, and the multiprocess metrics directory."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

LISTEN_FDS_START = 3  # sd_listen_fds(3)


@dataclass(frozen=True)
class Runtime:
    """The process's surroundings; the default is a plain process (no systemd, one process's metrics)."""

    listen_fds: int = 0  # sockets passed by systemd (socket activation), numbered from LISTEN_FDS_START
    notify_socket: str = ""  # systemd's notify address ("\0name" for an abstract socket); "" = nobody listens
    watchdog_timeout: float | None = None  # seconds without WATCHDOG=1 before systemd restarts the service
    metrics_dir: str | None = None  # several workers: where each one writes its metric values for the others

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Runtime:
        """Read LISTEN_PID/LISTEN_FDS, NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID (sd_listen_fds(3),
        sd_notify(3)); the variables meant for another process (another pid) are ignored."""
        pid = str(os.getpid())
        count = environ.get("LISTEN_FDS", "0") or "0"
        listen_fds = int(count) if environ.get("LISTEN_PID") == pid and count.isdigit() else 0
        address = environ.get("NOTIFY_SOCKET", "")
        notify_socket = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        watchdog_pid = environ.get("WATCHDOG_PID", "")
        mine = not watchdog_pid or watchdog_pid == pid
        watchdog = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else None
        return cls(listen_fds=listen_fds, notify_socket=notify_socket, watchdog_timeout=watchdog)

    def for_worker(self) -> Runtime:
        """A supervised worker's: it reports to the supervisor, not to systemd; same metrics directory."""
        return dataclasses.replace(self, listen_fds=0, notify_socket="", watchdog_timeout=None)
