"""JSON logs, one object per line on stdout, and the access log (never headers, bodies or secrets)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

ACCESS = logging.getLogger("pet_api.access")
# Only these extra fields are written: a careless extra={...} cannot leak a secret into the logs.
EXTRA_KEYS = ("request_id", "method", "path", "status", "duration_ms", "user_id", "error_code", "sql", "worker",
              "workers", "signal", "exit_code", "delay", "in_flight", "connections", "drained", "addresses",
              # security events (server/security_events.py)
              "event", "outcome", "client", "reason", "target_user_id", "session_id", "sessions_ended", "role",
              "disabled")


class Timestamps:
    """ISO-8601 UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z; strftime once per second, not per line."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def format(self, created: float, msecs: float) -> str:
        """The timestamp of a record created at `created` (seconds) with `msecs` milliseconds."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._text}.{int(msecs):03d}Z"


def shown_url(url: str) -> str:
    """A URL as messages and logs may show it: no user name or password (an HTTP client sends them as Basic
    auth), no query (it may hold a key), no fragment; "***@" where credentials were."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a malformed URL)"
    _, at, hosts = parts.netloc.rpartition("@")
    return f"{parts.scheme}://{'***@' if at else ''}{hosts}{parts.path}"


class JSONFormatter(logging.Formatter):
    """time, level, logger, message and the known extra fields."""

    def __init__(self) -> None:
        super().__init__()
        self.timestamps = Timestamps()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.timestamps.format(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in EXTRA_KEYS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class HideMalformedValues(logging.Filter):
    """tornado quotes the offending bytes in "Malformed HTTP message" lines ("Invalid header value 'Bearer
    <token>\\x7f'"): keep the reason, drop the quoted value."""

    QUOTED = re.compile(r"'.*'|\".*\"", re.S)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Malformed HTTP") and record.args:
            record.args = tuple(self.QUOTED.sub("'...'", str(arg)) for arg in record.args)
        return True


HIDE_MALFORMED_VALUES = HideMalformedValues()


# Drivers that log every statement with its parameters (password hashes, e-mails) at DEBUG: SQL text is
# logged by sql_echo instead, without parameters.
QUIET_LOGGERS = ("aiosqlite", "aiomysql")


def guard_secrets() -> None:
    """The logging settings that keep secrets out of the logs, whatever the level."""
    logging.getLogger("tornado.general").addFilter(HIDE_MALFORMED_VALUES)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def configure_logging(level: str, *, stream: Any = None) -> None:
    """Route every logger (ours, tornado's, asyncio's) through one JSON handler."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    guard_secrets()
    logging.getLogger("tornado.access").disabled = True  # replaced by pet_api.access


class AccessLog:
    """The application's log_function (one per application): one access-log line and the request metrics."""

    def __init__(self) -> None:
        self.timestamps = Timestamps()
        self._flush_queued: tuple[Any, Any] | None = None  # (loop, handler) whose flush waits for the loop's next turn

    def log_request(self, handler: Any) -> None:
        """Count the finished request in the metrics and write its access-log line."""
        status = handler.get_status()
        duration = handler.request.request_time()
        app = handler.application
        if app.metrics is not None:
            app.metrics.observe(handler, status, duration)
        if app.config.access_log and ACCESS.isEnabledFor(logging.INFO):
            user = handler.current_user
            # shown_path: a path holding a credential (a calendar feed's token) is logged as its route.
            fields = {"request_id": getattr(handler, "request_id", None), "method": handler.request.method,
                      "path": getattr(handler, "shown_path", handler.request.path), "status": status,
                      "duration_ms": round(duration * 1000, 2),
                      "user_id": getattr(user, "user_id", None)}
            if not self.write_line(fields):
                ACCESS.info("request", extra=fields)

    def write_line(self, fields: dict[str, Any]) -> bool:
        """The access line written straight to the one JSON handler, byte for byte what JSONFormatter would
        write, without the LogRecord machinery (most of the access log's cost). False when logging is set up
        any other way (extra handlers or filters, as in tests): then the line goes through logging."""
        root = logging.root
        if ACCESS.handlers or ACCESS.filters or not ACCESS.propagate or root.filters or len(root.handlers) != 1:
            return False
        handler = root.handlers[0]
        if type(handler) is not logging.StreamHandler or type(handler.formatter) is not JSONFormatter \
                or handler.filters or handler.level > logging.INFO:
            return False
        now = time.time()
        entry: dict[str, Any] = {"time": self.timestamps.format(now, (now - int(now)) * 1000), "level": "INFO",
                                 "logger": ACCESS.name, "message": "request"}
        for key, value in fields.items():
            if value is not None:
                entry[key] = value
        line = orjson.dumps(entry).decode() + handler.terminator
        with handler.lock:  # type: ignore[union-attr]
            try:
                handler.stream.write(line)
            except Exception:  # noqa: BLE001 - a broken stream is logging's to report
                return False
        self._flush_soon(handler)
        return True

    def _flush_soon(self, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        """Flush at the event loop's next turn: the lines of every request finished in this turn leave in
        one write (one system call, one wake-up of journald) and still appear at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            handler.flush()
            return
        if self._flush_queued != (loop, handler):
            self._flush_queued = (loop, handler)
            loop.call_soon(self._flush, handler)

    def _flush(self, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        self._flush_queued = None
        with contextlib.suppress(Exception):  # the next line's write fails too and goes through logging's reporting
            handler.flush()
