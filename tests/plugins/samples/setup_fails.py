"""A plugin whose setup raises (its own bug, in the application factory)."""

from typing import Any

from server.plugins import Plugin


def _setup(app: Any) -> None:
    raise RuntimeError("this plugin fails its setup on purpose")


PLUGIN = Plugin(name="setup_fails", routes=[], setup=_setup)
