"""Roles to scopes: from the profile, or from rbac_url (cached, last good copy kept, never failing open)."""

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import tornado.httpserver
import tornado.web
from tornado.testing import bind_unused_port

from server.errors import ServiceUnavailable
from server.rbac import RoleMap
from tests.factories import PASSWORD, create_user, token_for
from tests.processes import free_port

REFRESH = 0.1


class RoleService:
    """A tiny local role service whose answer the test controls."""

    def __init__(self) -> None:
        self.roles: Any = {"user": ["users:me", "pets:read"], "admin": ["users:me", "users:admin"],
                           "vet": ["users:me", "pets:read", "pets:admin"]}
        self.status = 200
        self.hits = 0
        self.url = ""
        self.server: tornado.httpserver.HTTPServer | None = None

    def start(self) -> None:
        service = self

        class RolesHandler(tornado.web.RequestHandler):
            def get(self) -> None:
                service.hits += 1
                self.set_status(service.status)
                self.set_header("Content-Type", "application/json")
                self.write(orjson.dumps({"roles": service.roles}))

        sock, port = bind_unused_port()
        self.server = tornado.httpserver.HTTPServer(tornado.web.Application([("/roles", RolesHandler)]))
        self.server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{port}/roles"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def role_service(io_loop: Any) -> Iterator[RoleService]:
    service = RoleService()
    service.start()
    yield service
    service.stop()


@pytest.fixture
def config_overrides(request: pytest.FixtureRequest, role_service: RoleService) -> dict[str, Any]:
    if getattr(request, "param", None) == "never-up":
        port = free_port()  # nothing listens there: connections are refused
        return {"rbac_url": f"http://127.0.0.1:{port}/roles", "rbac_refresh_seconds": REFRESH}
    return {"rbac_url": role_service.url, "rbac_refresh_seconds": REFRESH}


async def _wait_for(condition: Any, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_profile_roles_give_the_documented_scopes():
    from server.config import load_config

    roles = RoleMap(load_config("test", environ={}).roles)
    assert roles.loaded
    assert roles.scopes_for("user") == {"users:me", "pets:read", "pets:write"}
    assert roles.scopes_for("admin") == {"users:me", "pets:read", "pets:write", "users:admin", "pets:admin"}
    assert roles.scopes_for("nobody") == frozenset()
    assert roles.knows("admin") and not roles.knows("nobody")


def test_a_url_map_never_loaded_fails_closed():
    roles = RoleMap({"user": ("users:me",)}, url="http://127.0.0.1:9/roles")
    assert not roles.loaded
    with pytest.raises(ServiceUnavailable) as caught:
        roles.scopes_for("user")
    assert caught.value.code == 1008
    assert caught.value.headers["Retry-After"]


@pytest.mark.gen_test(timeout=20)
async def test_scopes_come_from_the_role_service(api, app, role_service):
    vet = await create_user(app, role="vet")
    response = await api.login(vet.email)
    assert response.status == 201, response.body
    assert response.body["data"]["scopes"] == ["pets:admin", "pets:read", "users:me"]
    user = await create_user(app)
    response = await api.login(user.email)
    assert response.body["data"]["scopes"] == ["pets:read", "users:me"]  # not the profile's pets:write
    # the scopes in the token are what routes check: no pets:write here
    denied = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=response.body["data"]["token"])
    assert denied.status == 403
    assert denied.body["error_code"] == 1004


@pytest.mark.gen_test(timeout=20)
async def test_changes_are_picked_up_and_the_last_good_copy_is_kept_when_the_service_fails(api, app, role_service):
    user = await create_user(app)
    role_service.roles = {**role_service.roles, "user": ["users:me", "pets:read", "pets:write"]}
    hits = role_service.hits
    await _wait_for(lambda: role_service.hits >= hits + 2)
    response = await api.login(user.email)
    assert response.body["data"]["scopes"] == ["pets:read", "pets:write", "users:me"]

    for failure in ("status", "empty", "not-a-map"):  # bad answers are failures, not maps
        if failure == "status":
            role_service.status = 500
        elif failure == "empty":
            role_service.status, role_service.roles = 200, {}
        else:
            role_service.roles = ["user"]
        hits = role_service.hits
        await _wait_for(lambda: role_service.hits >= hits + 2)  # noqa: B023 - read while waiting
        response = await api.login(user.email)
        assert response.status == 201, (failure, response.body)
        assert response.body["data"]["scopes"] == ["pets:read", "pets:write", "users:me"], failure

    role_service.stop()  # gone altogether
    await asyncio.sleep(REFRESH * 3)
    response = await api.login(user.email)
    assert response.status == 201
    assert response.body["data"]["scopes"] == ["pets:read", "pets:write", "users:me"]


@pytest.mark.gen_test(timeout=20)
async def test_admin_may_only_assign_a_role_the_service_knows(api, app, role_service):
    admin = await create_user(app, role="admin")
    user = await create_user(app)
    token = token_for(app, admin.id, ["users:me", "users:admin"])
    unknown = await api.patch(f"/v1/users/{user.id}", json={"role": "wizard"}, token=token)
    assert unknown.status == 400
    assert unknown.body["errors"] == [{"field": "role", "message": "unknown role"}]
    known = await api.patch(f"/v1/users/{user.id}", json={"role": "vet"}, token=token)
    assert known.status == 200
    assert known.body["data"]["role"] == "vet"


@pytest.mark.parametrize("config_overrides", ["never-up"], indirect=True)
@pytest.mark.gen_test(timeout=20)
async def test_with_no_map_ever_loaded_login_is_refused_not_opened(api, app):
    user = await create_user(app)
    response = await api.login(user.email)
    assert response.status == 503
    assert response.body == {"error_code": 1008, "message": "role service is unavailable",
                             "request": "POST /v1/tokens"}
    assert response.headers["Retry-After"] == "5"
    registered = await api.post("/v1/users", json={"email": "new@example.com", "password": PASSWORD,
                                                   "nickname": "n"})
    assert registered.status == 201  # what needs no role still works


@pytest.mark.gen_test(timeout=20)
async def test_a_refreshed_map_granting_an_undeclared_scope_logs_a_warning_once(app, role_service, caplog):
    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "pet_api.rbac" and r.levelno == logging.WARNING]

    with caplog.at_level(logging.WARNING, logger="pet_api.rbac"):
        await _wait_for(lambda: role_service.hits >= 2)  # maps granting only declared scopes: no warning
        assert warnings() == []
        role_service.roles = {**role_service.roles, "sitter": ["users:me", "photos:read"]}
        await _wait_for(lambda: bool(warnings()))
        hits = role_service.hits
        await _wait_for(lambda: role_service.hits >= hits + 3)  # the same map again: no second warning
        assert warnings() == ["the role map grants scopes no enabled plugin declares: photos:read"]
        assert app.roles.scopes_for("sitter") == {"users:me", "photos:read"}  # a warning, not a refusal


@pytest.mark.gen_test(timeout=20)
async def test_a_failed_fetch_is_logged_without_the_urls_credentials_or_query(role_service, caplog):
    """The HTTP client sends the URL's user and password as Basic auth, and a query may carry a key: the warning
    names the service by scheme, host and path only."""
    role_service.status = 500
    url = role_service.url.replace("http://", "http://rbacsvc:Hunter2SecretPw@") + "?api_key=TOPSECRETKEY"
    roles = RoleMap({}, url=url)
    with caplog.at_level(logging.WARNING, logger="pet_api.rbac"):
        await roles.fetch()
    assert role_service.hits == 1 and not roles.loaded
    shown = role_service.url.replace("http://", "http://***@")
    assert [r.getMessage() for r in caplog.records if r.name == "pet_api.rbac"] == [
        f"rbac fetch from {shown} failed (HTTPClientError); keeping the last good map"]
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("pet_api"))  # not the fake service's
    assert not any(secret in ours for secret in ("Hunter2SecretPw", "TOPSECRETKEY", "rbacsvc")), ours
