"""Profiles: config/<env>.yaml, overridden by PET_API_<KEY> variables, validated once into a frozen object."""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from server.db.url import parse_url

ENV_PREFIX = "PET_API_"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "placeholder", "your-secret", "insecure", "xxxx")
DEFAULT_ROLES = {
    "user": ["users:me", "pets:read", "pets:write"],
    "admin": ["users:me", "pets:read", "pets:write", "users:admin", "pets:admin"],
}


class ConfigError(Exception):
    """A profile value is missing or malformed; the message is one line naming the key."""


class Config(BaseModel):
    """The validated, immutable settings of one running service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: Literal["dev", "test", "prod"]
    debug: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=0, le=256)
    secret_key: tuple[str, ...] = Field(min_length=1)
    database_url: str = Field(min_length=1)
    auto_migrate: bool = False
    token_expiration: int = Field(900, ge=1)  # access tokens are short-lived: sessions go on by refresh tokens
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True
    xheaders: bool = False  # behind a reverse proxy: take the client address from X-Real-IP/X-Forwarded-For
    sql_echo: bool = False
    cors_allow_origins: tuple[str, ...] = ()
    rbac_url: str | None = None
    rbac_refresh_seconds: float = Field(60.0, gt=0)
    roles: dict[str, tuple[str, ...]] = Field(default_factory=lambda: {k: tuple(v) for k, v in DEFAULT_ROLES.items()})
    max_body_size: int = Field(1_048_576, ge=1024)
    max_header_size: int = Field(65_536, ge=1024)
    idle_connection_timeout: float = Field(300.0, gt=0)
    body_timeout: float = Field(30.0, gt=0)
    header_timeout: float = Field(10.0, gt=0)
    shutdown_timeout: float = Field(20.0, gt=0)
    plugins: tuple[str, ...] = ("core", "accounts", "pets", "records", "households", "reminders", "photos", "sync",
                                "metrics")
    plugin_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)  # plugin -> its keys (validated by it)
    db_pool_min: int = Field(1, ge=0)
    db_pool_max: int = Field(10, ge=1)
    db_connect_timeout: float = Field(2.0, gt=0)
    db_acquire_timeout: float = Field(2.0, gt=0)
    db_statement_timeout: float = Field(5.0, gt=0)
    db_pool_recycle: int = Field(600, ge=-1)
    # Multi-host database URLs (a Galera cluster): where autocommit reads go, how often every node's state is
    # checked, and how long a node listed before the writer must have been ready before it takes the writes back.
    db_read_from: Literal["writer", "any"] = "writer"
    db_health_interval: float = Field(1.0, gt=0)
    db_failback_after: float = Field(10.0, ge=0)
    retry_after: int = Field(5, ge=1)
    revocation_refresh_seconds: float = Field(0.5, gt=0)
    login_max_failures: int = Field(10, ge=1)
    login_max_failures_per_address: int = Field(100, ge=1)
    login_window_seconds: int = Field(900, ge=1)
    idempotency_retention_seconds: int = Field(86400, ge=1)
    metrics_local_only: bool = True
    password_hash_time_cost: int = Field(3, ge=1)
    password_hash_memory_kib: int = Field(65_536, ge=8)
    # Password work waiting for a hashing thread, per worker and per priority (logins, then new hashes): one
    # more is refused at once with 503 and Retry-After instead of making every caller wait behind a flood.
    password_hash_max_queued: int = Field(16, ge=1)

    @field_validator("secret_key", "cors_allow_origins", "plugins", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        """A list as JSON or comma-separated. A value starting with `[` is JSON or refused: split on its commas, a
        typo in a JSON list (its closing bracket lost) made brackets and quotes part of an origin or a key."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                return orjson.loads(value)  # a JSON list quoted as a string in the profile
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"starts with [ but is not a JSON list ({exc})") from None  # never the value
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip()) if value.strip() else ()
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        url = parse_url(value)  # a ValueError names what is wrong
        if url.scheme == "mysql" and not url.database:
            raise ValueError("a mysql:// URL must name the database: mysql://user:pass@host:3306/pet_api")
        return value

    @field_validator("rbac_url")
    @classmethod
    def _rbac_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():  # tornado takes "" for every interface: an EnvironmentFile line left empty did that
            raise ValueError("missing (name the address to listen on: 127.0.0.1, or 0.0.0.0 for every IPv4 interface)")
        return value

    @model_validator(mode="after")
    def _pool_fits(self) -> Config:
        if self.db_pool_min > self.db_pool_max:  # the pool opens db_pool_min connections whatever its maximum
            raise ValueError(f"db_pool_min: must not exceed db_pool_max ({self.db_pool_min} > {self.db_pool_max})")
        return self

    @model_validator(mode="after")
    def _prod_is_strict(self) -> Config:
        if self.env == "prod":
            if self.debug:
                raise ValueError("debug: must be off in prod")
            for key in self.secret_key:
                if len(key) < 32 or any(m in key.lower() for m in PLACEHOLDER_MARKERS) or len(set(key)) < 8:
                    raise ValueError("secret_key: must be at least 32 random characters in prod, not a placeholder")
        return self

    @property
    def signing_keys(self) -> list[str]:
        """Keys for itsdangerous: all verify, the last one signs."""
        return list(self.secret_key)


def _env_value(raw: str) -> Any:
    """A variable's value: JSON when it looks like a list or an object, else the string."""
    if raw.strip().startswith(("[", "{")):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return raw


def _from_env(fields: set[str], environ: os._Environ[str] | dict[str, str]) -> dict[str, Any]:
    return {key: _env_value(environ[ENV_PREFIX + key.upper()]) for key in fields
            if ENV_PREFIX + key.upper() in environ}


def _plugin_settings_from_env(environ: os._Environ[str] | dict[str, str]) -> dict[str, dict[str, Any]]:
    """PET_API_<PLUGIN>__<KEY> variables as {plugin: {key: value}} (names lower-cased)."""
    found: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        plugin, sep, key = name.removeprefix(ENV_PREFIX).partition("__")
        if name.startswith(ENV_PREFIX) and sep and plugin and key:
            found.setdefault(plugin.lower(), {})[key.lower()] = _env_value(raw)
    return found


def _utf8(path: Path, data: bytes) -> str:
    """A config file's text; a ConfigError naming the line of a byte that is not UTF-8 (the line itself is not
    shown: it may hold a secret). systemd refuses such an EnvironmentFile value too."""
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"config: {path} line {line}: not UTF-8 text") from None


def load_config(env: str, *, overrides: dict[str, Any] | None = None,
                environ: dict[str, str] | None = None, config_dir: Path = CONFIG_DIR,
                options: Collection[str] = ()) -> Config:
    """Read config/<env>.yaml, apply PET_API_* variables, then explicit overrides; validate once. `options`: the
    overrides that came from command-line options (`--port`), which an error names as such."""
    path = config_dir / f"{env}.yaml"
    try:
        data = yaml.safe_load(_utf8(path, path.read_bytes())) or {}
    except FileNotFoundError:
        raise ConfigError(f"config: no profile {path}") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read the profile {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must be a mapping of keys to values")
    variables = os.environ if environ is None else environ
    fields = set(Config.model_fields) - {"env"}
    data.update(_from_env(fields, variables))
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    data["env"] = env
    profile_settings = data.get("plugin_settings") or {}
    if isinstance(profile_settings, dict):  # the environment wins, key by key
        merged = {name: dict(keys) if isinstance(keys, dict) else keys for name, keys in profile_settings.items()}
        for name, keys in _plugin_settings_from_env(variables).items():
            if isinstance(merged.get(name, {}), dict):
                merged[name] = {**merged.get(name, {}), **keys}
        data["plugin_settings"] = merged
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, options)) from None
    from server.registry import load_plugins  # the plugins import handlers, which import this module

    load_plugins(config)  # unknown, broken or misconfigured plugins stop here, with one line naming them
    return config


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a systemd EnvironmentFile, read as systemd reads it (`_env_assignments`), so the CLI reads
    /etc/pet-api/env exactly as the unit does. ConfigError naming the line when one is not KEY=VALUE (systemd
    drops such a line with a log message)."""
    try:
        text = _utf8(path, path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"config: cannot read the env file {path}: {exc.strerror}") from None
    found: dict[str, str] = {}
    for number, key, value in _env_assignments(text):
        if value is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"config: {path} line {number}: not KEY=VALUE")
        found[key] = value
    return found


_NEWLINE, _WHITESPACE, _DOUBLE_QUOTE_ESCAPES = "\n\r", " \t\n\r", '"\\`$'


def _env_assignments(text: str) -> list[tuple[int, str, str | None]]:
    """(line, key, value) of each assignment, value None for a line without '=', by the state machine of systemd's
    parse_env_file_internal (src/basic/env-file.c): # or ; at a line's start comments it out; blanks around the
    key and before the value are dropped, trailing blanks of an unquoted value too; unquoted, a backslash takes
    the next character as it is and a backslash-newline joins the lines; '...' keeps everything; in "...",
    backslash escapes only " \\ ` $ (before another character it stays) and backslash-newline joins the lines;
    quoted and unquoted pieces that touch make one value (a quote inside an unquoted value is a character)."""
    found: list[tuple[int, str, str | None]] = []
    state, key, value, chomp, line, key_line = "pre_key", "", "", -1, 1, 1
    for char in text:
        if state == "pre_key":
            if char in "#;":
                state = "comment"
            elif char not in _WHITESPACE:
                state, key, key_line = "key", char, line
        elif state == "key":
            if char in _NEWLINE:
                found.append((key_line, key.rstrip(_WHITESPACE), None))
                state = "pre_key"
            elif char == "=":
                state, value = "pre_value", ""
            else:
                key += char
        elif state in ("pre_value", "value") and char in _NEWLINE:
            found.append((key_line, key.rstrip(_WHITESPACE), value[:chomp] if chomp >= 0 else value))
            state, chomp = "pre_key", -1
        elif state == "pre_value":
            if char in "'\"\\":
                state = {"'": "single", '"': "double", "\\": "escape"}[char]
            elif char not in _WHITESPACE:
                state, value = "value", value + char
        elif state == "value":
            if char == "\\":
                state, chomp = "escape", -1
            else:
                if char not in _WHITESPACE:
                    chomp = -1
                elif chomp < 0:
                    chomp = len(value)
                value += char
        elif state == "escape":
            state = "value"
            value += "" if char in _NEWLINE else char
        elif state == "single":
            if char == "'":
                state = "pre_value"
            else:
                value += char
        elif state == "double":
            if char == '"':
                state = "pre_value"
            elif char == "\\":
                state = "double_escape"
            else:
                value += char
        elif state == "double_escape":
            state = "double"
            value += char if char in _DOUBLE_QUOTE_ESCAPES else "" if char == "\n" else "\\" + char
        elif char in _NEWLINE:  # a comment ends at its line's end, a trailing backslash or not (systemd >= 254)
            state = "pre_key"
        if char == "\n":
            line += 1
    if state == "key":
        found.append((key_line, key.rstrip(_WHITESPACE), None))
    elif state != "pre_key" and state != "comment":
        found.append((key_line, key.rstrip(_WHITESPACE), value[:chomp] if state == "value" and chomp >= 0 else value))
    return found


# PET_API_* variables read by something other than the profile: the CLI, the benchmark, the test suite.
OTHER_VARIABLES = frozenset({"PET_API_ADMIN_PASSWORD", "PET_API_BENCH_TOKEN", "PET_API_TEST_DATABASE_URL",
                             "PET_API_SCHEMATHESIS_SEED", "PET_API_SCHEMATHESIS_EXAMPLES"})


def unknown_variables(environ: os._Environ[str] | dict[str, str], config: Config) -> list[str]:
    """The PET_API_* variables that set nothing (a misspelt PET_API_DATABSE_URL would otherwise be ignored in
    silence; PET_API_ENV too: --env chooses the profile), then the plugin settings, from the environment or the
    profile, that no plugin has (`ignored_plugin_settings`)."""
    from server.registry import ignored_plugin_settings  # the plugins import handlers, which import this module

    settings = {ENV_PREFIX + key.upper() for key in Config.model_fields if key != "env"}
    return sorted(name for name in environ if name.startswith(ENV_PREFIX) and name not in settings
                  and name not in OTHER_VARIABLES and "__" not in name) + ignored_plugin_settings(config, environ)


def key_and_reason(exc: ValidationError) -> tuple[str, str]:
    """The key the first error is about ("" when it cannot tell) and why: a field's own error, or a model-level
    check (one setting against another) whose message says "key: reason"."""
    err = exc.errors()[0]
    key = str(err["loc"][0]) if err["loc"] else ""
    message = err["msg"].removeprefix("Value error, ")
    named, sep, reason = message.partition(": ")
    if not key and sep and named.isidentifier():
        key, message = named, reason
    return key, "missing" if err["type"] == "missing" else message


def _describe(exc: ValidationError, options: Collection[str] = ()) -> str:
    """One line naming the setting: the command-line option it came from (`--port`), else its variable."""
    key, message = key_and_reason(exc)
    if key == "secret_key" and exc.errors()[0]["type"] == "too_short":
        message = "missing"
    if key in options:
        return f"config error: --{key}: {message}"
    return f"config error: {ENV_PREFIX}{key.upper()} ({key}): {message}"
