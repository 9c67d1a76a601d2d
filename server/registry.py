"""The enabled plugins of one application, loaded and checked once: each found, its requirements met (no cycle),
its paths its own, its settings validated, its error classes inside its own range, its migration files all
applicable; the catalog, scopes and migration order they make."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from server.config import ENV_PREFIX, ConfigError, key_and_reason
from server.db.migrations import CORE_SOURCE, MigrationFolderError, Source, check_folder
from server.errors import ERROR_CLASSES, APIError, ErrorCatalog
from server.plugins import PART_RE, Found, Plugin, PluginError, discoverable, entry_points, find_plugin

if TYPE_CHECKING:
    from server.config import Config

CORE_CODES = frozenset(cls.code for cls in ERROR_CLASSES)


@dataclass(frozen=True)
class Scope:
    name: str
    plugin: str
    description: str


@dataclass(frozen=True)
class PluginSet:
    """The enabled plugins in profile order, with what they add to the application."""

    found: tuple[Found, ...]
    settings: dict[str, BaseModel]
    catalog: ErrorCatalog
    scopes: dict[str, Scope]

    @property
    def plugins(self) -> list[Plugin]:
        return [f.plugin for f in self.found]

    def in_dependency_order(self) -> list[Found]:
        """Each plugin after the ones it requires (otherwise in profile order)."""
        by_name = {f.name: f for f in self.found}
        ordered: list[Found] = []

        def visit(found: Found) -> None:
            if found in ordered:
                return
            for required in found.plugin.requires:
                visit(by_name[required])
            ordered.append(found)

        for found in self.found:
            visit(found)
        return ordered

    def migration_sources(self) -> list[Source]:
        """(plugin, folder): the core's migrations, then those of every enabled plugin that ships some, each
        after the plugins it requires."""
        return [CORE_SOURCE, *((f.name, f.migrations) for f in self.in_dependency_order() if f.migrations is not None)]


def settings_variable(plugin: str, key: str) -> str:
    """PET_API_<PLUGIN>__<KEY>: where the environment sets a plugin's key."""
    return f"{ENV_PREFIX}{plugin.upper()}__{key.upper()}"


def ignored_plugin_settings(config: Config, environ: Mapping[str, str]) -> list[str]:
    """The plugin settings that set nothing: PET_API_<PLUGIN>__<KEY> variables, then the profile's plugin_settings
    entries, naming no plugin one could enable (`PET_API_ACOUNTS__...`) or a key their plugin does not have.
    A disabled plugin's own keys are fine."""
    found, _ = discoverable(config.plugins)
    keys = {f.name: set(f.plugin.settings.model_fields) if f.plugin.settings else set() for f in found}
    ignored, from_environ = [], set()
    for name in sorted(environ):
        plugin, sep, key = name.removeprefix(ENV_PREFIX).partition("__")
        if name.startswith(ENV_PREFIX) and sep and plugin and key:
            from_environ.add((plugin.lower(), key.lower()))
            if key.lower() not in keys.get(plugin.lower(), ()):
                ignored.append(name)
    for plugin, values in sorted(config.plugin_settings.items()):
        if plugin not in keys:
            if any((plugin, key) not in from_environ for key in values):
                ignored.append(f"plugin_settings.{plugin}")
            continue
        ignored += [f"plugin_settings.{plugin}.{key}" for key in sorted(values)
                    if key not in keys[plugin] and (plugin, key) not in from_environ]
    return ignored


def _fail(message: str) -> ConfigError:
    return ConfigError(f"config error: {message}")


def _load(names: tuple[str, ...]) -> list[Found]:
    points = entry_points()
    found: list[Found] = []
    for name in names:
        try:
            found.append(find_plugin(name, advertised=points))
        except PluginError as exc:
            raise _fail(f"{ENV_PREFIX}PLUGINS (plugins): {exc}") from None
    seen: dict[str, str] = {}
    for item, name in zip(found, names, strict=True):
        if item.name in seen:
            raise _fail(f"{ENV_PREFIX}PLUGINS (plugins): plugin {item.name!r} is enabled twice "
                        f"({seen[item.name]!r} and {name!r})")
        seen[item.name] = name
    for item in found:
        missing = [r for r in item.plugin.requires if r not in seen]
        if missing:
            raise _fail(f"{ENV_PREFIX}PLUGINS (plugins): plugin {item.name!r} requires "
                        f"{', '.join(repr(m) for m in missing)}, which is not enabled")
    cycle = _requires_cycle(found)
    if cycle:
        raise _fail(f"{ENV_PREFIX}PLUGINS (plugins): plugin {cycle[0]!r} requires itself: "
                    f"{' -> '.join(repr(name) for name in cycle)}")
    return found


def _requires_cycle(found: list[Found]) -> list[str]:
    """The first cycle of `requires` among these plugins, as names from a plugin back to it (['a', 'b', 'a'],
    ['a', 'a'] for one requiring itself); [] when there is none."""
    requires = {f.name: f.plugin.requires for f in found}
    done: set[str] = set()
    walk: list[str] = []

    def visit(name: str) -> list[str]:
        if name in walk:
            return [*walk[walk.index(name):], name]
        if name in done:
            return []
        walk.append(name)
        for required in requires[name]:
            cycle = visit(required)
            if cycle:
                return cycle
        walk.pop()
        done.add(name)
        return []

    for item in found:
        cycle = visit(item.name)
        if cycle:
            return cycle
    return []


def _routes(found: list[Found]) -> None:
    """Refuse a path two routes mount (a plugin shadowing another's or the core's): Tornado serves a path with the
    first route's handler, whatever the method, while the API document would describe the last."""
    mounted: dict[str, tuple[str, str]] = {}  # the path without its parts' names -> (plugin, path)
    for item in found:
        for route in item.plugin.routes:
            key = PART_RE.sub(r"{:\2}", route.path)  # '/v1/pets/{id}' is '/v1/pets/{pet_id}'
            if key in mounted:
                owner, path = mounted[key]
                if owner == item.name:
                    raise _fail(f"plugin {owner!r} mounts route {path} twice")
                raise _fail(f"plugins {owner!r} and {item.name!r} both mount route {path}"
                            + (f" ({item.name!r} as {route.path})" if path != route.path else ""))
            mounted[key] = (item.name, route.path)


def validate_settings(plugin: Plugin, values: dict[str, Any]) -> BaseModel | None:
    """The plugin's settings model validated from the keys it has, or a ConfigError naming the first bad one. A
    key it does not have is left out, whatever its model's `extra`: ignored_plugin_settings warns of it at start,
    one rule for every plugin (a model forbidding extras stopped the start, the others' were warned of)."""
    if plugin.settings is None:
        return None
    fields = plugin.settings.model_fields
    try:
        return plugin.settings.model_validate({key: value for key, value in values.items() if key in fields})
    except ValidationError as exc:
        key, message = key_and_reason(exc)
        where = (f"{settings_variable(plugin.name, key)} (plugin_settings.{plugin.name}.{key})" if key
                 else f"plugin_settings.{plugin.name}")
        raise _fail(f"{where}: {message}") from None


def _catalog(found: list[Found]) -> ErrorCatalog:
    """Core classes, then each plugin's: APIError subclasses answering 4xx or 5xx, every code inside its plugin's
    range, claimed once, off the core's."""
    classes: list[type[APIError]] = list(ERROR_CLASSES)
    owners: dict[int, str] = {}
    for item in found:
        reserved = item.plugin.error_codes
        for cls in item.plugin.errors:
            if not (isinstance(cls, type) and issubclass(cls, APIError)):
                raise _fail(f"plugin {item.name!r}: its errors entry {getattr(cls, '__name__', repr(cls))} is not "
                            f"an APIError subclass")
            if not (isinstance(cls.status, int) and 400 <= cls.status <= 599):
                raise _fail(f"plugin {item.name!r}: error code {cls.code} ({cls.__name__}) has status {cls.status!r},"
                            f" not a 4xx or 5xx")
            if cls.code in owners:
                raise _fail(f"plugin {item.name!r}: error code {cls.code} ({cls.__name__}) is also claimed by "
                            f"plugin {owners[cls.code]!r}")
            if reserved is None or cls.code not in reserved:
                where = "no error_codes range" if reserved is None else f"range {reserved.start}-{reserved.stop - 1}"
                raise _fail(f"plugin {item.name!r}: error code {cls.code} ({cls.__name__}) is outside its {where}")
            owners[cls.code] = item.name
            classes.append(cls)
    ranges: list[tuple[range, str]] = []
    for item in found:
        reserved = item.plugin.error_codes
        if reserved is None:
            continue
        span = f"{reserved.start}-{reserved.stop - 1}"
        clash = sorted(CORE_CODES & set(reserved))
        if clash:
            raise _fail(f"plugin {item.name!r}: its error codes {span} include the core's {clash[0]}")
        for other, owner in ranges:
            if reserved.start < other.stop and other.start < reserved.stop:
                raise _fail(f"plugin {item.name!r}: its error codes {span} overlap {other.start}-{other.stop - 1} "
                            f"of plugin {owner!r}")
        ranges.append((reserved, item.name))
    return ErrorCatalog(tuple(classes))


def _scopes(found: list[Found]) -> dict[str, Scope]:
    scopes: dict[str, Scope] = {}
    for item in found:
        for name, description in item.plugin.scopes.items():
            scopes.setdefault(name, Scope(name, item.name, description))  # a shared scope: the first declarer
    return scopes


# Per config object (a frozen one): load_config checks the plugins, then the start-up schema check, the migrations
# and make_app use the same set instead of scanning the entry points again (37 ms each). An entry goes with its config.
_LOADED: dict[int, tuple[weakref.ref[Config], PluginSet]] = {}


def load_plugins(config: Config) -> PluginSet:
    """The profile's plugins, loaded and checked once per config; a ConfigError (one line naming the plugin)
    otherwise."""
    key = id(config)
    loaded = _LOADED.get(key)
    if loaded is not None and loaded[0]() is config:
        return loaded[1]
    plugin_set = _load_set(config)
    _LOADED[key] = (weakref.ref(config, lambda _: _LOADED.pop(key, None)), plugin_set)
    return plugin_set


def _load_set(config: Config) -> PluginSet:
    found = _load(config.plugins)
    _routes(found)
    settings = {}
    for item in found:
        model = validate_settings(item.plugin, dict(config.plugin_settings.get(item.name, {})))
        if model is not None:
            settings[item.name] = model
    plugin_set = PluginSet(tuple(found), settings, _catalog(found), _scopes(found))
    for name, folder in plugin_set.migration_sources():
        try:
            check_folder(folder)
        except MigrationFolderError as exc:
            raise _fail(f"plugin {name!r}: migrations: {exc}") from None
    return plugin_set
