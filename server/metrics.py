"""Prometheus metrics of one application: requests, latency, in flight, pool, errors by code."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PoolCollector(Collector):
    """Database connections in use and idle, read when scraped."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_use, idle = self.app.db.pool_stats() if self.app.db is not None else (0, 0)
        family = GaugeMetricFamily("pet_api_db_pool_connections", "Database pool connections", labels=["state", "pid"])
        family.add_metric(["in_use", str(os.getpid())], in_use)
        family.add_metric(["idle", str(os.getpid())], idle)
        yield family


class Metrics:
    """The metric objects, registered on a registry owned by the application (no module globals)."""

    def __init__(self, app: Any, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter("pet_api_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("pet_api_request_duration_seconds", "HTTP request latency",
                                 ["route", "method"], buckets=BUCKETS, registry=self.registry)
        self.errors = Counter("pet_api_errors", "Error responses by error_code", ["error_code"],
                              registry=self.registry)
        self.in_flight = Gauge("pet_api_requests_in_flight", "Requests being served", registry=self.registry,
                               multiprocess_mode="livesum")
        self.registry.register(PoolCollector(app))

    def observe(self, handler: Any, status: int, duration: float) -> None:
        """Count one finished request."""
        route = handler.route if hasattr(handler, "route") else "unmatched"
        method = handler.request.method
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(duration)
        code = getattr(handler, "error_code", None)
        if code is not None:
            self.errors.labels(str(code)).inc()
