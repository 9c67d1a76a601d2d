"""Stand-in for systemd's service manager in the socket-activation test.

systemd-socket-activate passes this program the listening socket (fd 3). It runs the server command with
that socket the way systemd runs a socket-activated service (LISTEN_FDS=1, LISTEN_PID=the server's pid) and,
on SIGHUP, restarts it like `systemctl restart`: SIGTERM, wait for the exit, start again, while the socket
stays open here. SIGTERM stops the server and exits. Starts and exits are appended to the events file as
"started PID" and "exited PID CODE".

Usage: socket_holder.py EVENTS_FILE -- COMMAND...
"""

from __future__ import annotations

import os
import signal
import sys

SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGCHLD}


def main(events_path: str, command: list[str]) -> int:
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        print("socket_holder: no socket from systemd-socket-activate", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}

    def record(line: str) -> None:
        with open(events_path, "a") as events:
            events.write(line + "\n")

    def start() -> int:
        pid = os.fork()
        if pid == 0:  # the service: fd 3 stays open across exec, as systemd passes it
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.execve(command[0], command, {**env, "LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())})
        record(f"started {pid}")
        return pid

    def stop(pid: int) -> None:
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        record(f"exited {pid} {os.waitstatus_to_exitcode(status)}")

    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    child = start()
    while True:
        signum = signal.sigwait(SIGNALS)
        if signum == signal.SIGHUP:
            stop(child)
            child = start()
        elif signum == signal.SIGTERM:
            stop(child)
            return 0
        else:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid:
                record(f"exited {pid} {os.waitstatus_to_exitcode(status)}")
                return 1


if __name__ == "__main__":
    separator = sys.argv.index("--")
    sys.exit(main(sys.argv[1], sys.argv[separator + 1:]))
