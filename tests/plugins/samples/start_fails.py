"""A plugin whose on_start raises (its own bug, once the database is open)."""

from typing import Any

from server.plugins import Plugin


async def _start(app: Any) -> None:
    raise RuntimeError("this plugin fails to start on purpose")


PLUGIN = Plugin(name="start_fails", routes=[], on_start=_start)
