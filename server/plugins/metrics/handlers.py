"""The Prometheus scrape endpoint."""

from __future__ import annotations

import ipaddress

from server.errors import Forbidden
from server.handlers.base import BaseHandler
from server.validation import NoQuery


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        """Prometheus text format; limited to local addresses when the profile says so."""
        if self.application.config.metrics_local_only:
            try:
                local = ipaddress.ip_address(self.request.remote_ip or "").is_loopback
            except ValueError:
                local = False
            if not local:
                raise Forbidden("metrics are served to local addresses only")
        if self.request.query_arguments:  # it takes none (not even prometheus_client's name[] filter): as any route
            self.parse_query(NoQuery)
        self.set_header("Content-Type", self.application.metrics.content_type)
        self.finish(self.application.metrics.render())
