"""A plugin mounting a path the pets plugin mounts (its part named otherwise), for another method."""

from server.declare import operation
from server.handlers.base import BaseHandler
from server.plugins import Plugin, Route


class ShadowHandler(BaseHandler):
    @operation(summary="Shadows the pets plugin's route")
    async def put(self, id: str) -> None:
        self.send({"shadow": True})


PLUGIN = Plugin(name="route_shadow", routes=[Route("/v1/pets/{id}", ShadowHandler)])
