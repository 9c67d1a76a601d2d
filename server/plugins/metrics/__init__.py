"""GET /metrics in Prometheus text format."""

from typing import Any

from server.plugins import Plugin, Route
from server.plugins.metrics.handlers import MetricsHandler


def _setup(app: Any) -> None:
    # imported here: loading the plugin (the profile check, before workers fork) must not import
    # prometheus_client, which chooses its storage when imported (server/serve.py export_metrics_dir)
    from server.plugins.metrics.collector import Metrics

    app.metrics = Metrics(app)


async def _start(app: Any) -> None:
    app.metrics.start()


async def _stop(app: Any) -> None:
    app.metrics.stop()


PLUGIN = Plugin(name="metrics", routes=[Route("/metrics", MetricsHandler)], setup=_setup, on_start=_start,
                on_stop=_stop)
