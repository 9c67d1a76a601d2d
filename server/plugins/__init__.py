"""Plugins: a module exposing PLUGIN = Plugin(...) with its /v1 routes, hooks, migrations, settings, scopes and
error codes; found by entry point (group pet_api.plugins), short name (server.plugins.<name>) or module path."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import posixpath
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic

from server.errors import APIError

if TYPE_CHECKING:
    from server.app import PetAPI
    from server.db import Executor

ENTRY_POINT_GROUP = "pet_api.plugins"
BUILT_IN_PACKAGE = "server.plugins"
DISTRIBUTION = "pet-api"


# A {name:token} part: an opaque credential in the path (a calendar feed's token), URL-safe base64.
TOKEN_SEGMENT = "[A-Za-z0-9_-]{16,128}"
PART_RE = re.compile(r"\{(\w+)(?::(token))?\}")


@dataclass(frozen=True)
class Route:
    """A path template ('/v1/pets/{pet_id}') and the handler class serving it. A {name} part is a decimal id;
    a {name:token} part is a credential (TOKEN_SEGMENT), which logs and error bodies never show: they show
    the template instead of the path."""

    path: str
    handler: type

    @property
    def pattern(self) -> str:
        """The Tornado regex: each part passed by name; the rest is literal (the dot of '/weight.svg' matches
        only a dot)."""
        parts = PART_RE.split(self.path)  # literal, name, kind, literal, ...
        out = [re.escape(parts[0])]
        for i in range(1, len(parts), 3):
            segment = TOKEN_SEGMENT if parts[i + 1] == "token" else "[0-9]{1,20}"
            out += [f"(?P<{parts[i]}>{segment})", re.escape(parts[i + 2])]
        return "".join(out) + "$"

    @property
    def template(self) -> str:
        """The path as the API document, the access log and the metrics name it: '{token}' for '{token:token}'."""
        return template(self.path)

    @property
    def secret(self) -> bool:
        """Whether the path holds a credential (a {name:token} part)."""
        return any(kind for _, kind in PART_RE.findall(self.path))


def template(path: str) -> str:
    """A route path without its parts' kinds: '/v1/calendar/{token}.ics' for '/v1/calendar/{token:token}.ics'."""
    return PART_RE.sub(r"{\1}", path)


def token_parts(path: str) -> frozenset[str]:
    """The names of a route path's {name:token} parts."""
    return frozenset(name for name, kind in PART_RE.findall(path) if kind)


@dataclass(frozen=True)
class SecretPaths:
    """Where the routes holding a credential start ('/v1/calendar/' for '/v1/calendar/{token:token}.ics'), so that a
    path no route matched is not logged or echoed when it is a feed URL slightly changed (a trailing slash, no or
    another extension, another case, escaped letters, doubled slashes or dot segments): it shows as the template of
    the route it starts like."""

    starts: tuple[tuple[str, str], ...]  # (what a secret route's path starts with, casefolded; its template)

    @classmethod
    def of(cls, routes: Iterable[Route]) -> SecretPaths:
        return cls(tuple((PART_RE.split(r.path)[0].casefold(), r.template) for r in routes if r.secret))

    def shown(self, path: str) -> str:
        """The path as logs and error bodies show it: a secret route's template when it starts like one."""
        if self.starts:
            loose = posixpath.normpath("/" + urllib.parse.unquote(path).lstrip("/")).casefold()
            for start, shown in self.starts:
                if loose.startswith(start):
                    return shown
        return path


Hook = Callable[[Any], Awaitable[None]]
# export(db, user_id): the plugin's part of a user's data export (GET /v1/users/me/export), as (section, item)
# pairs; the items of a section form one array of the document, so a section's items come together, and a
# plugin reads its rows a page at a time (the document is streamed, never held whole).
Exporter = Callable[["Executor", int], AsyncIterator[tuple[str, Any]]]
# after_migrate(db): run by `main.py migrate` once every migration is applied, for a data backfill too long for a
# worker's start (systemd's start timeout); the lines it returns are printed for the operator.
AfterMigrate = Callable[["Executor"], Awaitable[list[str]]]
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Plugin:
    name: str
    routes: list[Route]
    setup: Callable[[PetAPI], None] | None = None  # sync, in make_app: attach objects to the application
    on_start: Hook | None = None  # async, once the database is open
    on_stop: Hook | None = None
    on_drain: Callable[[Any], None] | None = None  # sync, when the drain begins: end long-lived responses now
    requires: tuple[str, ...] = ()  # plugin names that must be enabled too
    scopes: dict[str, str] = field(default_factory=dict)  # scope -> one-line description
    settings: type[pydantic.BaseModel] | None = None  # validated once at start
    errors: tuple[type[APIError], ...] = ()  # its error classes (codes inside error_codes)
    error_codes: range | None = None  # the numeric range it reserves, e.g. range(2100, 2200)
    migrations: Path | None = None  # mysql/ and sqlite/ NNNN_name.sql; default: <package>/migrations if it exists
    version: str | None = None  # shown by `main.py plugins`; default: the distribution's version
    export: Exporter | None = None  # its part of a user's data export: (section, item) pairs, see Exporter
    export_sections: tuple[str, ...] = ()  # the sections its export always has: [] when it yields no item of one
    after_migrate: AfterMigrate | None = None  # async, by `main.py migrate`: see AfterMigrate


def operations(plugin: Plugin) -> list[tuple[str, str, Any]]:
    """(path, method, handler function) of every method the plugin's handlers define ({name:token} kept)."""
    import tornado.web

    table = []
    for route in plugin.routes:
        for method in HTTP_METHODS:
            fn = getattr(route.handler, method)
            if fn is not getattr(tornado.web.RequestHandler, method):
                table.append((route.path, method, fn))
    return table


class PluginError(Exception):
    """A plugin cannot be used as configured; the message is one line naming it."""


@dataclass(frozen=True)
class Found:
    """A plugin and where it came from."""

    plugin: Plugin
    source: str  # "built in", "entry point", "path"
    module: str
    distribution: str | None = None  # entry points: the distribution advertising it
    version: str | None = None
    migrations: Path | None = None  # the plugin's folder, or its package's migrations/ when that exists

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def origin(self) -> str:
        """'built in', 'entry point <dist> <version>' or 'path <module>'."""
        if self.source == "entry point":
            return f"entry point {self.distribution} {self.version}"
        if self.source == "path":
            return f"path {self.module}"
        return "built in"


def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed distributions' plugins by advertised name (sys.path as it is now)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def built_in_names() -> list[str]:
    """Short names of the packages in server/plugins/."""
    here = Path(__file__).resolve().parent
    return sorted(p.name for p in here.iterdir() if (p / "__init__.py").is_file())


def find_plugin(name: str, *, advertised: dict[str, importlib.metadata.EntryPoint] | None = None) -> Found:
    """The plugin a profile names: an entry point of that name, else server.plugins.<name>, else a dotted path."""
    points = entry_points() if advertised is None else advertised
    if name in points:
        ep = points[name]
        module_name = ep.value.partition(":")[0].strip()
        loaded = _import(name, module_name)
        target = loaded if not ep.attr else _attribute(name, loaded, ep.attr)
        plugin = _plugin_of(name, target)
        dist = ep.dist.name if ep.dist is not None else None
        version = plugin.version or (ep.dist.version if ep.dist is not None else None)
        return Found(plugin, "entry point", module_name, dist, version, _migrations(plugin, loaded))
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and (Path(__file__).parent / name / "__init__.py").is_file():
        module = _import(name, f"{BUILT_IN_PACKAGE}.{name}")
        plugin = _plugin_of(name, module)
        return Found(plugin, "built in", module.__name__, DISTRIBUTION, plugin.version or _own_version(),
                     _migrations(plugin, module))
    if "." not in name and not _top_level_module(name):
        raise PluginError(f"plugin {name!r}: unknown (no entry point {name!r} in {ENTRY_POINT_GROUP}, "
                          f"no module {BUILT_IN_PACKAGE}.{name})")
    module = _import(name, name)
    plugin = _plugin_of(name, module)
    return Found(plugin, "path", name, None, plugin.version, _migrations(plugin, module))


def _top_level_module(name: str) -> bool:
    """Whether `name` is an importable top-level module (a path without dots), found without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _import(name: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            raise PluginError(f"plugin {name!r}: no module {module_name!r}") from None
        raise PluginError(f"plugin {name!r}: cannot import {module_name}: {one_line(exc)}") from None
    except Exception as exc:  # a plugin's own bug must still end in one line naming it
        raise PluginError(f"plugin {name!r}: cannot import {module_name}: {one_line(exc)}") from None


def _attribute(name: str, module: Any, attr: str) -> Any:
    try:
        for part in attr.split("."):
            module = getattr(module, part)
    except AttributeError:
        raise PluginError(f"plugin {name!r}: {module.__name__} has no {attr}") from None
    return module


def _plugin_of(name: str, target: Any) -> Plugin:
    plugin = target if isinstance(target, Plugin) else getattr(target, "PLUGIN", None)
    if not isinstance(plugin, Plugin):
        raise PluginError(f"plugin {name!r}: {getattr(target, '__name__', target)} has no PLUGIN = Plugin(...)")
    return plugin


def _migrations(plugin: Plugin, module: Any) -> Path | None:
    if plugin.migrations is not None:
        return plugin.migrations
    locations = getattr(module, "__path__", None)
    if not locations:
        return None
    folder = Path(next(iter(locations))) / "migrations"
    return folder if folder.is_dir() else None


def _own_version() -> str | None:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def one_line(exc: BaseException) -> str:
    """An exception as one line, its class first: what the start's one-line failures quote."""
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def discoverable(enabled: tuple[str, ...]) -> tuple[list[Found], dict[str, str]]:
    """Every plugin one could enable: built-ins, entry points and the enabled dotted paths; plus the ones that
    failed to load (name -> one-line reason)."""
    points = entry_points()
    names = list(dict.fromkeys([*built_in_names(), *points, *enabled]))
    found, broken = [], {}
    for name in names:
        try:
            found.append(find_plugin(name, advertised=points))
        except PluginError as exc:
            broken[name] = str(exc)
    return found, broken


__all__ = ["ENTRY_POINT_GROUP", "TOKEN_SEGMENT", "AfterMigrate", "Exporter", "Found", "Hook", "Plugin", "PluginError",
           "Route", "discoverable", "entry_points", "find_plugin", "template", "token_parts"]
