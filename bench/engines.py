"""Two load generators with one result shape: wrk (C, preferred) and a pure-Python asyncio client (for
machines without wrk; it needs a core of its own to keep up and tops out far below wrk)."""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from bench.scenarios import Request, Scenario

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class Result:
    scenario: str
    engine: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None  # None: no answer to take it from
    p99_ms: float | None
    non_2xx: int
    errors: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class EngineError(Exception):
    """The load generator could not run; the message is its own reason, in one line."""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def ms(value: float | None, spec: str) -> str:
    """A latency for a table: `spec` formatting, or "-" right-aligned to its width when there is none."""
    return format(value, spec) if value is not None else "-".rjust(int(spec.partition(".")[0] or 0))


def base_parts(url: str) -> tuple[str, str]:
    """A deployment's base URL as (scheme://host:port, path prefix without its trailing slash)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


def wrk_seconds(seconds: float) -> int:
    """What wrk runs for when asked `seconds`: its -d takes whole seconds, and at least one."""
    return max(1, round(seconds))


# ---- wrk

def run_wrk(url: str, scenario: Scenario, *, seconds: float, connections: int, threads: int) -> Result:
    """Drive the scenario with wrk and a Lua script (wrk_seconds(seconds) long); parse its --latency report."""
    origin, prefix = base_parts(url)  # the script's paths carry the prefix: wrk sends them as they are
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(scenario.lua(prefix))
    try:
        done = subprocess.run(
            ["wrk", f"-t{max(1, min(threads, connections))}", f"-c{connections}", f"-d{wrk_seconds(seconds)}s",
             "--latency", "-s", script.name, origin],
            capture_output=True, text=True, check=False)
    finally:
        os.unlink(script.name)
    if done.returncode != 0:
        raise EngineError(f"wrk failed ({scenario.name}): {_reason(done.stderr, done.stdout, done.returncode)}")
    return parse_wrk(scenario.name, done.stdout)


def _reason(stderr: str, stdout: str, code: int) -> str:
    """wrk's own reason in one line: its error ("unable to connect to ...") is on stderr, its usage on stdout."""
    for text in (stderr, stdout):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[0]
    return f"exit code {code}"


def parse_wrk(name: str, out: str) -> Result:
    """A Result from wrk's text report."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if rps is None or total is None:
        raise EngineError(f"wrk did not report ({name}): {_reason('', out, 0)}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Result(name, "wrk", int(total.group(1)), float(total.group(2)) * UNITS_MS[total.group(3)] / 1000,
                  float(rps.group(1)), _wrk_percentile(out, "50"), _wrk_percentile(out, "99"),
                  int(bad.group(1)) if bad else 0, sum(map(int, errors.groups())) if errors else 0)


def _wrk_percentile(out: str, pct: str) -> float | None:
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    return float(m.group(1)) * UNITS_MS[m.group(2)] if m else None


# ---- pure Python

@dataclass
class _Tally:
    latencies: list[float]
    non_2xx: int = 0
    errors: int = 0


def run_python(url: str, scenario: Scenario, *, seconds: float, connections: int, insecure: bool = False) -> Result:
    """Drive the scenario from this process: `connections` keep-alive connections, one request at a time each."""
    return asyncio.run(drive(url, scenario, seconds=seconds, connections=connections, insecure=insecure))


async def drive(url: str, scenario: Scenario, *, seconds: float, connections: int,
                insecure: bool = False) -> Result:
    """The asyncio load loop (usable from a running event loop)."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80)
    context = ssl.create_default_context() if tls else None
    if context is not None and insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    prefix = base_parts(url)[1]
    encoded = [_encode(r, parts.netloc, prefix) for r in scenario.requests]
    tally = _Tally([])
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_client(host, port, context, encoded, deadline, tally)
                           for _ in range(connections)))
    elapsed = time.perf_counter() - started
    done = sorted(tally.latencies)
    return Result(scenario.name, "python", len(done), elapsed, len(done) / elapsed, _percentile(done, 50),
                  _percentile(done, 99), tally.non_2xx, tally.errors)


def _encode(r: Request, host: str, prefix: str) -> bytes:
    head = [f"{r.method} {prefix}{r.path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in r.headers.items())]
    if r.body or r.method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(r.body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + r.body


async def _client(host: str, port: int, context: ssl.SSLContext | None, encoded: list[bytes], deadline: float,
                  tally: _Tally) -> None:
    writer = None
    try:
        while time.perf_counter() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port, ssl=context)
                sent = time.perf_counter()
                writer.write(encoded[0] if len(encoded) == 1 else random.choice(encoded))  # noqa: S311
                status, keep_alive = await asyncio.wait_for(_response(reader), max(0.1, deadline + 2 - sent))
                tally.latencies.append((time.perf_counter() - sent) * 1000)
                if not 200 <= status < 300:
                    tally.non_2xx += 1
                if not keep_alive:
                    writer.close()
                    writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                tally.errors += 1
                if writer is not None:
                    writer.close()
                    writer = None
                await asyncio.sleep(0.05)
    finally:
        if writer is not None:
            writer.close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the connection stays open)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    keep_alive = headers.get("connection", "").lower() != "close" and head[0].startswith("HTTP/1.1")
    return status, keep_alive


def _percentile(ordered: list[float], pct: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1)]
