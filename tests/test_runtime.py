"""Runtime.from_environ: systemd's variables are taken only when meant for this process (sd_listen_fds(3),
sd_notify(3)); a supervised worker reports to its supervisor, never to systemd."""

from __future__ import annotations

import os

from server.runtime import Runtime


def test_a_plain_environment_is_a_plain_process():
    assert Runtime.from_environ({"PATH": "/usr/bin"}) == Runtime()
    assert Runtime() == Runtime(listen_fds=0, notify_socket="", watchdog_timeout=None, metrics_dir=None)


def test_systemd_variables_meant_for_this_process_are_read():
    pid = str(os.getpid())
    runtime = Runtime.from_environ({"LISTEN_PID": pid, "LISTEN_FDS": "2", "NOTIFY_SOCKET": "@pet-api/notify",
                                    "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": pid})
    assert runtime == Runtime(listen_fds=2, notify_socket="\0pet-api/notify", watchdog_timeout=3.0)
    assert Runtime.from_environ({"NOTIFY_SOCKET": "/run/notify"}).notify_socket == "/run/notify"


def test_variables_meant_for_another_process_or_malformed_are_ignored():
    other = str(os.getpid() + 1)
    runtime = Runtime.from_environ({"LISTEN_PID": other, "LISTEN_FDS": "1", "WATCHDOG_USEC": "3000000",
                                    "WATCHDOG_PID": other})
    assert (runtime.listen_fds, runtime.watchdog_timeout) == (0, None)
    malformed = Runtime.from_environ({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "two", "WATCHDOG_USEC": "0"})
    assert (malformed.listen_fds, malformed.watchdog_timeout) == (0, None)


def test_a_worker_keeps_the_metrics_directory_and_forgets_systemd():
    supervisor = Runtime(listen_fds=1, notify_socket="/run/notify", watchdog_timeout=3.0, metrics_dir="/tmp/m")
    assert supervisor.for_worker() == Runtime(metrics_dir="/tmp/m")
