"""A plugin mounting the core's /v1/health, listed before the core so that it would be the one served."""

from server.declare import operation
from server.handlers.base import BaseHandler
from server.plugins import Plugin, Route


class HealthShadow(BaseHandler):
    @operation(summary="Shadows the core's health check")
    async def get(self) -> None:
        self.send({"shadow": True})


PLUGIN = Plugin(name="route_core", routes=[Route("/v1/health", HealthShadow)])
