"""Plugins: a module exposing PLUGIN = Plugin(...) with its /v1 routes and optional hooks."""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Route:
    """A path template ('/v1/pets/{pet_id}') and the handler class serving it."""

    path: str
    handler: type

    @property
    def pattern(self) -> str:
        """The Tornado regex: each {name} is a decimal id passed by name; the rest is literal (the dot of
        '/weight.svg' matches only a dot)."""
        parts = re.split(r"\{(\w+)\}", self.path)  # literal, name, literal, ...
        return "".join(f"(?P<{part}>[0-9]{{1,20}})" if i % 2 else re.escape(part) for i, part in enumerate(parts)) + "$"


Hook = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class Plugin:
    name: str
    routes: list[Route]
    setup: Callable[[Any], None] | None = None  # sync, in make_app: attach objects to the application
    on_start: Hook | None = None  # async, once the database is open
    on_stop: Hook | None = None


def load_plugin(name: str) -> Plugin:
    """Import a plugin by short name (server.plugins.<name>) or dotted path."""
    module_name = name if "." in name else f"server.plugins.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"plugins: no plugin module {module_name!r}") from exc
    plugin = getattr(module, "PLUGIN", None)
    if not isinstance(plugin, Plugin):
        raise ValueError(f"plugins: {module_name} has no PLUGIN = Plugin(...)")
    return plugin
