"""systemd's notify protocol (sd_notify(3)) in a few lines: READY=1, WATCHDOG=1, STOPPING=1, STATUS=..."""

from __future__ import annotations

import os
import socket


class Notifier:
    """Datagrams to $NOTIFY_SOCKET (a path, or '@name' for an abstract socket); silent when unset."""

    def __init__(self, environ: dict[str, str] | os._Environ[str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        mine = not watchdog_pid or watchdog_pid == str(os.getpid())
        # systemd restarts us when no WATCHDOG=1 arrives for this long.
        self.watchdog_timeout = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else None

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


def forget_manager(environ: dict[str, str] | os._Environ[str]) -> None:
    """Remove the notify/watchdog variables so that child processes do not talk to systemd themselves."""
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        environ.pop(key, None)
