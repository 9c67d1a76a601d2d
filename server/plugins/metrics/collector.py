"""Prometheus metrics of one application: requests and latency by route/method/status, requests in flight,
database pool, errors by code. With several workers (the application's runtime.metrics_dir) every worker
writes its values to that directory and a scrape of any worker sums them all."""

from __future__ import annotations

import asyncio
import bisect
import weakref
from typing import Any

import prometheus_client
import tornado.ioloop
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from server.internals import histogram_buckets

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
SAMPLE_SECONDS = 1.0  # how often a worker publishes its gauges for the other workers' scrapes


class Metrics:
    """The metric objects, registered on a registry owned by the application (no module globals)."""

    content_type = prometheus_client.CONTENT_TYPE_LATEST

    def __init__(self, app: Any, registry: CollectorRegistry | None = None) -> None:
        self.app = app
        self.metrics_dir: str | None = app.runtime.metrics_dir
        self.multiprocess = self.metrics_dir is not None
        self.registry = registry or CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter("pet_api_requests", "HTTP requests", labels, registry=self.registry)
        self.latency = Histogram("pet_api_request_duration_seconds", "HTTP request latency", labels,
                                 buckets=BUCKETS, registry=self.registry)
        self.errors = Counter("pet_api_errors", "Error responses by error_code", ["error_code"],
                              registry=self.registry)
        self.in_flight = Gauge("pet_api_requests_in_flight", "Requests being served", registry=self.registry,
                               multiprocess_mode="livesum")
        self.pool = Gauge("pet_api_db_pool_connections", "Database pool connections", ["state"],
                          registry=self.registry, multiprocess_mode="livesum")
        self.workers = Gauge("pet_api_workers", "Serving processes", registry=self.registry,
                             multiprocess_mode="livesum")
        self.workers.set(1)
        # Multi-host database URLs only: every node's state as this worker sees it, and the node it writes to.
        self.node_ready = Gauge("pet_api_db_node_ready", "1 while the database node is ready (Galera: Synced)",
                                ["node"], registry=self.registry, multiprocess_mode="livemin")
        self.node_writer = Gauge("pet_api_db_node_writer", "Workers writing to the database node", ["node"],
                                 registry=self.registry, multiprocess_mode="livesum")
        self._servers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._pending: dict[tuple[str, str, int], list[float]] = {}  # durations of this loop turn, by labels
        self._flush_queued = False
        self._sampler: tornado.ioloop.PeriodicCallback | None = None

    def watch(self, server: Any) -> None:
        """Count the requests in flight of this HTTP server (serve.PetHTTPServer)."""
        self._servers.add(server)

    def observe(self, handler: Any, status: int, duration: float) -> None:
        """Count one finished request (called for every request: no formatting). Requests and latencies are
        added at the end of the event loop's turn, all of a turn's at once: each prometheus_client value takes a
        lock (with several workers also a write to the shared file) for every addition."""
        route = getattr(handler, "route", "unmatched")
        method = handler.request.method
        if method not in METHODS:
            method = "other"  # a client's made-up method must not mint label values
        key = (route, method, status)
        durations = self._pending.get(key)
        if durations is None:
            self._pending[key] = [duration]
        else:
            durations.append(duration)
        if not self._flush_queued:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
                self._flush_queued = True
            except RuntimeError:  # no event loop (a script): at once
                self.flush()
        code = getattr(handler, "error_code", None)
        if code is not None:
            self.errors.labels(str(code)).inc()

    def flush(self) -> None:
        """Add the requests observed since the last flush to the counters and histograms."""
        self._flush_queued = False
        pending, self._pending = self._pending, {}
        for key, durations in pending.items():
            children = self._children.get(key)
            if children is None:
                route, method, status = key
                children = self._children[key] = (self.requests.labels(route, method, str(status)),
                                                  self.latency.labels(route, method, str(status)))
            children[0].inc(len(durations))
            observe_all(children[1], durations)

    def sample(self) -> None:
        """Publish the gauges read from live objects: requests in flight, pool connections."""
        self.in_flight.set(sum(server.in_flight for server in self._servers))
        db = self.app.db
        in_use, idle = db.pool_stats() if db is not None else (0, 0)
        self.pool.labels("in_use").set(in_use)
        self.pool.labels("idle").set(idle)
        for node in db.node_states() if db is not None else ():
            self.node_ready.labels(node.node).set(int(node.state == "ready"))
            self.node_writer.labels(node.node).set(int(node.writer))

    def start(self) -> None:
        """With several workers, publish the gauges every second so that any worker's scrape sees them."""
        if self.multiprocess and self._sampler is None:
            self._sampler = tornado.ioloop.PeriodicCallback(self.sample, SAMPLE_SECONDS * 1000)
            self._sampler.start()

    def stop(self) -> None:
        self.flush()
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None

    def render(self) -> bytes:
        """The Prometheus text exposition: this process, or every worker's in multiprocess mode."""
        self.flush()
        self.sample()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.metrics_dir)
        return generate_latest(registry)


def observe_all(histogram: Any, durations: list[float]) -> None:
    """histogram.observe(d) for each of durations, with one addition to the sum and one to each bucket reached
    (prometheus_client's buckets are stored one per bound and summed when collected, as its observe does)."""
    bounds, buckets, total = histogram_buckets(histogram)
    counts: dict[int, int] = {}
    for duration in durations:
        i = bisect.bisect_left(bounds, duration)  # the first bound >= duration (the last is +Inf)
        counts[i] = counts.get(i, 0) + 1
    total.inc(sum(durations))
    for i, n in counts.items():
        buckets[i].inc(n)
