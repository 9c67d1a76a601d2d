"""A test-only plugin whose route raises an unexpected exception (mounted by dotted path)."""

from server.handlers.base import BaseHandler
from server.plugins import Plugin, Route


class BoomHandler(BaseHandler):
    async def get(self) -> None:
        raise RuntimeError("boom: an unexpected failure")

    async def post(self) -> None:
        self.send({"received": len(self.body)})


PLUGIN = Plugin(name="boom", routes=[Route("/v1/boom", BoomHandler)], version="9.9.9")  # a path has no distribution
