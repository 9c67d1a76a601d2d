"""Another client, in a process of its own (its own interpreter and GIL, never the test's event loop): GET a path
on one keep-alive connection, one request after another, timing each.

    python -m tests.reliability.pet_reader PORT PATH COUNT

The bearer token comes on the first line of stdin (not in the process list). With COUNT > 0 it reads COUNT times;
with 0 it reads until a second line (or EOF) arrives on stdin. It prints "reading" once its first answer came, then
one JSON line at the end: {"took": [seconds, ...], "statuses": [...]}. `ReaderProcess` runs it from a test."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def read(port: int, path: str, token: str, count: int, stop: threading.Event) -> dict[str, list[Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    took: list[float] = []
    statuses: list[int] = []
    while (count and len(took) < count) or (not count and not stop.is_set()):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        took.append(time.perf_counter() - started)
        statuses.append(response.status)
        if len(took) == 1:
            print("reading", flush=True)
    conn.close()
    return {"took": took, "statuses": statuses}


def main(argv: list[str]) -> int:
    port, path, count = int(argv[1]), argv[2], int(argv[3])
    token = sys.stdin.readline().strip()
    stop = threading.Event()
    if not count:
        threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print(json.dumps(read(port, path, token, count, stop)), flush=True)
    return 0


class ReaderProcess:
    """`python -m tests.reliability.pet_reader` from a test: start() returns once it has its first answer; results()
    stops it (when it reads until told) and gives its latencies and statuses."""

    def __init__(self, port: int, path: str, token: str, count: int = 0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.pet_reader", str(port), path,
                                      str(count)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(token + "\n")
        self.proc.stdin.flush()
        first = self.proc.stdout.readline()
        assert first == "reading\n", first

    def results(self) -> dict[str, list[Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
        except BrokenPipeError:  # it had read its COUNT and exited
            pass
        out = self.proc.stdout.readline()
        self.proc.wait(30)
        got: dict[str, list[Any]] = json.loads(out)
        return got


if __name__ == "__main__":
    sys.exit(main(sys.argv))
