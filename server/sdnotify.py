"""What a serving process says about its life (READY, WATCHDOG, STOPPING) and systemd's notify protocol
(sd_notify(3)) that carries it: one process reports to systemd, a supervised worker to its supervisor."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

READY = "READY"  # serving
WATCHDOG = "WATCHDOG"  # the event loop still turns
STOPPING = "STOPPING"  # draining
Report = Callable[[str], object]  # takes one of the three messages above


class Notifier:
    """Datagrams to systemd's notify socket (a path, or "\\0name" for an abstract socket); silent without one."""

    def __init__(self, address: str, *, ready_status: str) -> None:
        self.address = address
        self.ready_status = ready_status  # STATUS= sent with READY=1, e.g. "serving with 2 workers"
        self._sock: socket.socket | None = None

    def report(self, message: str) -> bool:
        """Send READY, WATCHDOG or STOPPING as systemd's fields; False when nobody listens or the send failed."""
        if message == READY:
            return self.send("READY=1", f"STATUS={self.ready_status}", f"MAINPID={os.getpid()}")
        if message == WATCHDOG:
            return self.send("WATCHDOG=1")
        if message == STOPPING:
            return self.send("STOPPING=1", "STATUS=draining")
        raise ValueError(f"unknown report {message!r}")

    def send(self, *fields: str) -> bool:
        """Send 'KEY=value' fields in one datagram; False when nobody listens or the send failed."""
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.connect(self.address)
            self._sock.sendall("\n".join(fields).encode())
        except OSError:
            self.close()  # the manager went away or restarted: reconnect next time
            return False
        return True

    def close(self) -> None:
        """Drop the socket (a forked child must not share it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
