"""Test factories: rows created through the services, tokens minted with chosen scopes, an HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httputil import HTTPHeaders
from tornado.testing import bind_unused_port

from server.app import PetAPI
from server.auth import Principal
from server.connections import make_http_server
from server.errors import TokenRevoked
from server.passwords import VERIFY, Passwords
from server.plugins.accounts.services.users import User, update_user
from server.plugins.accounts.services.users import create_user as insert_user
from server.services import utcnow
from server.services.revocations import RevocationCache

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)
USER_SCOPES = ("users:me", "pets:read", "pets:write")
JSON_TYPE = "application/json; charset=UTF-8"
both_backends = pytest.mark.parametrize("backend", ["mysql", "sqlite"], indirect=True)  # MariaDB and SQLite


@dataclass
class Response:
    status: int
    body: Any
    headers: HTTPHeaders
    raw: bytes


class Api:
    """A small JSON client for the server under test."""

    def __init__(self, client: AsyncHTTPClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url

    async def request(self, method: str, path: str, *, json: Any = None, body: bytes | str | None = None,
                      token: str | None = None, headers: dict[str, str] | None = None,
                      request_timeout: float = 30) -> Response:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if json is not None:
            body = orjson.dumps(json)
        request = HTTPRequest(self.base_url + path, method=method, headers=all_headers, body=body,
                              allow_nonstandard_methods=True, request_timeout=request_timeout)
        response = await self.client.fetch(request, raise_error=False)
        raw = response.body or b""
        parsed = orjson.loads(raw) if raw and response.headers.get("Content-Type", "").startswith(
            "application/json") else None
        return Response(response.code, parsed, response.headers, raw)

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Response:
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Response:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.request("DELETE", path, **kw)

    async def login(self, account: str, secret: str = PASSWORD) -> Response:
        """POST /v1/tokens with these credentials, whatever the answer."""
        return await self.post("/v1/tokens", json={"account": account, "secret": secret})

    async def token(self, account: str, secret: str = PASSWORD) -> str:
        """A token from logging in (asserts it worked)."""
        response = await self.login(account, secret)
        assert response.status == 201, response.body
        return response.body["data"]["token"]


def assert_error(response: Response, status: int, code: int, request: str, message: str | None = None) -> None:
    """An error answer: status, JSON type, error code, request line, a message (this one if given), no trace."""
    assert response.status == status, response.body
    assert response.headers["Content-Type"] == JSON_TYPE, response.raw[:200]
    assert response.body["error_code"] == code, response.body
    assert response.body["request"] == request, response.body
    assert isinstance(response.body["message"], str) and response.body["message"], response.body
    if message is not None:
        assert response.body["message"] == message, response.body
    assert "trace" not in response.body, response.body


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_seq)}@example.com"


async def create_user(app: PetAPI, *, email: str | None = None, password: str = PASSWORD,
                      nickname: str = "tester", role: str = "user", disabled: bool = False,
                      verified: bool = False) -> User:
    """A user row, created through the service layer (verified: its e-mail too, as confirming the mail would)."""
    user = await insert_user(app.db, email=email or unique_email(), password_hash=await app.passwords.hash(password),
                             nickname=nickname, role=role)
    if disabled:
        user = await update_user(app.db, user_id=user.id, fields={"disabled": 1})
    if verified:
        user = await update_user(app.db, user_id=user.id, fields={"email_verified_at": utcnow()})
    return user


def token_for(app: PetAPI, user_id: int, scopes: tuple[str, ...] | list[str] = USER_SCOPES) -> str:
    """A token minted directly with the given scopes."""
    return app.tokens.issue(user_id, scopes).token


async def user_with_token(app: PetAPI, *, role: str = "user", **kw: Any) -> tuple[User, str]:
    """A user and a token carrying its role's scopes."""
    user = await create_user(app, role=role, **kw)
    return user, token_for(app, user.id, sorted(app.roles.scopes_for(role)))


async def create_pet(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    """A pet created through the API (asserts it worked)."""
    response = await api.post("/v1/pets", json={"name": "Rex", "species": "dog", **fields}, token=token)
    assert response.status == 201, response.body
    return response.body["data"]


@contextlib.asynccontextmanager
async def serving(app: PetAPI) -> AsyncIterator[str]:
    """Serve an application built inside a test on a free port of this event loop, with production's HTTP server
    settings (connections.make_http_server); yields its base URL."""
    sock, port = bind_unused_port()
    server = make_http_server(app, app.config)
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await server.close_all_connections()


class _GatedHasher:
    """An argon2 hasher whose verifications wait for the gate before they run (on their hashing thread)."""

    def __init__(self, hasher: Any, gate: threading.Event) -> None:
        self.hasher, self.gate = hasher, gate

    def hash(self, password: str) -> str:
        return str(self.hasher.hash(password))

    def verify(self, stored: str, password: str) -> bool:
        self.gate.wait(30)
        return bool(self.hasher.verify(stored, password))


@contextlib.asynccontextmanager
async def hash_queue_full(passwords: Passwords, stored: str) -> AsyncIterator[None]:
    """For the block, every hashing thread busy with a verification and the verifications' queue full: the next
    verification (a login, a password typed again) answers 503/1008 at once. `stored`: any argon2 hash."""
    gate = threading.Event()
    real, passwords.hasher = passwords.hasher, _GatedHasher(passwords.hasher, gate)
    busy = [asyncio.ensure_future(passwords.verify(stored, "x"))
            for _ in range(passwords.threads + passwords.max_queued)]
    try:
        for _ in range(500):
            if passwords.queued(VERIFY) >= passwords.max_queued:
                break
            await asyncio.sleep(0.01)
        assert passwords.queued(VERIFY) == passwords.max_queued
        yield
    finally:
        gate.set()
        await asyncio.gather(*busy)
        passwords.hasher = real


@contextlib.asynccontextmanager
async def trigger(app: PetAPI, sql: str) -> AsyncIterator[None]:
    """A trigger on the app's database for the block (the session's MariaDB database is shared: always dropped)."""
    name = sql.split()[2]
    await app.db.execute(sql)
    try:
        yield
    finally:
        await app.db.execute(f"DROP TRIGGER IF EXISTS {name}")


def _serving_a_request() -> bool:
    """Whether the running code serves a request (background refreshes and purges run outside any handler)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "_execute" and frame.f_code.co_filename.endswith("tornado/web.py"):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def record_round_trips(app: PetAPI, *, requests_only: bool = False) -> list[list[str]]:
    """The round trips the app's driver makes from now on (only those of requests it serves, with requests_only), in
    order, each as the statements it sent, their whitespace collapsed."""
    trips: list[list[str]] = []
    driver: Any = app.db.driver  # type: ignore[attr-defined]
    run = driver.run

    async def recording(conn: Any, batch: Any, fetch: Any) -> Any:
        if not requests_only or _serving_a_request():
            trips.append([" ".join(sql.split()) for sql, _ in batch])
        return await run(conn, batch, fetch)

    driver.run = recording
    return trips


def record_statements(app: PetAPI, *, requests_only: bool = False) -> list[str]:
    """The statements the app's driver runs from now on (only those of requests it serves, with requests_only), in
    order, with their whitespace collapsed; several sent in one round trip are each one."""
    issued: list[str] = []
    driver: Any = app.db.driver  # type: ignore[attr-defined]
    run = driver.run

    async def recording(conn: Any, batch: Any, fetch: Any) -> Any:
        if not requests_only or _serving_a_request():
            issued.extend(" ".join(sql.split()) for sql, _ in batch)
        return await run(conn, batch, fetch)

    driver.run = recording
    return issued


async def revoked_elsewhere(app: PetAPI, principal: Principal) -> bool:
    """Whether another process, reading the revocations from the database, refuses the token."""
    cache = RevocationCache(refresh_seconds=1, token_expiration=app.config.token_expiration)
    await cache.refresh(app.db)
    try:
        cache.check(principal)
    except TokenRevoked:
        return True
    return False
