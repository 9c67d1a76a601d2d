"""GET /metrics in Prometheus text format."""

from server.handlers.metrics import MetricsHandler
from server.metrics import Metrics
from server.plugins import Plugin, Route


def _setup(app: object) -> None:
    app.metrics = Metrics(app)  # type: ignore[attr-defined]


PLUGIN = Plugin(name="metrics", routes=[Route("/metrics", MetricsHandler)], setup=_setup)
