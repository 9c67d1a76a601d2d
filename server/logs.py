"""JSON logs, one object per line on stdout, and the access log (never headers, bodies or secrets)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

ACCESS = logging.getLogger("pet_api.access")
EXTRA_KEYS = ("request_id", "method", "path", "status", "duration_ms", "user_id", "error_code", "sql", "worker")


class JSONFormatter(logging.Formatter):
    """time, level, logger, message and the known extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
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


def configure_logging(level: str, *, stream: Any = None) -> None:
    """Route every logger (ours, tornado's, asyncio's) through one JSON handler."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("tornado.access").disabled = True  # replaced by pet_api.access


def log_request(handler: Any) -> None:
    """Application log_function: one access-log line and the request metrics."""
    status = handler.get_status()
    duration = handler.request.request_time()
    app = handler.application
    if app.metrics is not None:
        app.metrics.observe(handler, status, duration)
    if app.config.access_log and ACCESS.isEnabledFor(logging.INFO):
        user = getattr(handler, "_current_user", None)
        ACCESS.info("request", extra={
            "request_id": getattr(handler, "request_id", None), "method": handler.request.method,
            "path": handler.request.path, "status": status, "duration_ms": round(duration * 1000, 2),
            "user_id": getattr(user, "user_id", None)})
