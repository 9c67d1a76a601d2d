"""A plugin whose on_start never ends (a start held up, as by a slow service): it says so on stderr, then waits."""

import asyncio
import sys
from typing import Any

from server.plugins import Plugin

WAITING = "start_waits: on_start is waiting"


async def _start(app: Any) -> None:
    print(WAITING, file=sys.stderr, flush=True)
    await asyncio.Event().wait()


PLUGIN = Plugin(name="start_waits", routes=[], on_start=_start)
