"""A test-only plugin (PET_API_PLUGINS may name any importable module): GET /test/slow?ms=N sleeps N ms."""

from __future__ import annotations

import asyncio

from server.handlers.base import BaseHandler
from server.plugins import Plugin, Route


class SlowHandler(BaseHandler):
    async def get(self) -> None:
        """Answer after ms milliseconds (at most 60 s)."""
        ms = min(int(self.get_query_argument("ms", "1000")), 60_000)
        await asyncio.sleep(ms / 1000)
        self.send({"slept_ms": ms})


PLUGIN = Plugin(name="slow", routes=[Route("/test/slow", SlowHandler)])
