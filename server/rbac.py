"""Role -> scopes: from the profile, or fetched from rbac_url, cached, last good copy kept; never fails open."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import orjson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from server import periodic
from server.errors import ServiceUnavailable
from server.logs import shown_url

log = logging.getLogger("pet_api.rbac")


class RoleMap:
    """Answers scopes_for(role); with a URL, refreshes in the background and keeps the last good map."""

    def __init__(self, roles: Mapping[str, tuple[str, ...]], *, url: str | None = None,
                 refresh_seconds: float = 60.0) -> None:
        self.url = url
        self.refresh_seconds = refresh_seconds
        self._map: dict[str, frozenset[str]] | None = None if url else self._freeze(roles)
        self._task: asyncio.Task[None] | None = None
        self._declared: frozenset[str] | None = None
        self._warned: list[str] = []

    def declare(self, scopes: frozenset[str]) -> None:
        """The scopes the enabled plugins declare: from now on a map (the current one, and each one fetched
        later) that grants another scope logs a warning naming it, once per distinct set."""
        self._declared = scopes
        self._warn_undeclared()

    def _warn_undeclared(self) -> None:
        if self._declared is None:
            return
        undeclared = sorted(self.granted() - self._declared)
        if undeclared and undeclared != self._warned:
            log.warning("the role map grants scopes no enabled plugin declares: %s", ", ".join(undeclared))
        self._warned = undeclared

    @staticmethod
    def _freeze(roles: Mapping[str, object]) -> dict[str, frozenset[str]]:
        frozen = {}
        for role, scopes in roles.items():
            if not isinstance(role, str) or not isinstance(scopes, list | tuple) or \
                    not all(isinstance(s, str) for s in scopes):
                raise ValueError("role map must be {role: [scope, ...]}")
            frozen[role] = frozenset(scopes)
        return frozen

    @property
    def loaded(self) -> bool:
        return self._map is not None

    def granted(self) -> frozenset[str]:
        """Every scope some role of the current map grants (none before a map is loaded)."""
        return frozenset().union(*self._map.values()) if self._map else frozenset()

    def scopes_for(self, role: str) -> frozenset[str]:
        """The role's scopes; 503 when no map was ever loaded (no failing open)."""
        if self._map is None:
            raise ServiceUnavailable("role service is unavailable", headers={"Retry-After": "5"})
        return self._map.get(role, frozenset())

    def knows(self, role: str) -> bool:
        """Whether the role exists in the current map; 503 when no map was ever loaded."""
        self.scopes_for(role)
        assert self._map is not None
        return role in self._map

    async def fetch(self) -> None:
        """Load the map from rbac_url; on failure keep the last good copy."""
        if not self.url:
            return
        try:
            response = await AsyncHTTPClient().fetch(self.url, request_timeout=5, connect_timeout=2)
            data = orjson.loads(response.body)
            roles = data.get("roles", data) if isinstance(data, dict) else None
            if not isinstance(roles, dict) or not roles:
                raise ValueError("role map must be a non-empty {role: [scope, ...]}")
            self._map = self._freeze(roles)
            self._warn_undeclared()
        except (HTTPClientError, OSError, ValueError, orjson.JSONDecodeError) as exc:
            log.warning("rbac fetch from %s failed (%s); keeping the last good map", shown_url(self.url),
                        exc.__class__.__name__)

    def start(self) -> None:
        """Refresh periodically while the service runs."""
        if self.url:
            self._task = periodic.start_every(self._interval, self.fetch,
                                              lambda exc: log.exception("rbac refresh failed"))

    def _interval(self) -> float:
        # until a first map arrives, retry sooner: logins answer 503 meanwhile
        return self.refresh_seconds if self.loaded else min(self.refresh_seconds, 2.0)

    async def stop(self) -> None:
        """Stop refreshing."""
        await periodic.stop(self._task)
