"""Authorization matrix (OWASP API1/3/5: object-, property- and function-level authorization): every
protected route of app.route_table() x every way a caller can be wrong answers the documented status and
code; server-owned fields are refused in every body."""

from __future__ import annotations

import io
import time
import zlib
from dataclasses import dataclass
from typing import Any

import icalendar
import orjson
import pyotp
import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from server import make_app
from server.auth import SALT, SIGNING
from server.plugins.accounts.services.sessions import hash_token, new_secret
from server.services import utcnow
from tests.conftest import test_config as profile
from tests.factories import PASSWORD, create_user, token_for

ALL_SCOPES = ("users:me", "pets:read", "pets:write", "users:admin", "pets:admin")
BODIES = {  # a valid body for each route that takes one, so only the caller can be what is wrong
    ("patch", "/v1/users/me"): {"nickname": "Renamed"},
    ("patch", "/v1/users/{user_id}"): {"disabled": False},
    ("post", "/v1/pets"): {"name": "Nova", "species": "cat"},
    ("patch", "/v1/pets/{pet_id}"): {"name": "Renamed"},
    ("patch", "/v1/pets/{pet_id}/records/{record_id}"): {"note": "Renamed", "completed_at": "2024-02-01T10:00:00Z"},
    ("post", "/v1/pets/{pet_id}/records"): {"kind": "weight", "date": "2024-01-02", "value": 3.5},
    ("post", "/v1/users"): {"email": "new@example.com", "password": "long-enough-pw", "nickname": "N"},
    ("post", "/v1/tokens"): {"account": "owner@example.com", "secret": PASSWORD},
    ("post", "/v1/pets/{pet_id}/invitations"): {"email": "someone@example.com", "role": "viewer"},
    ("patch", "/v1/pets/{pet_id}/members/{user_id}"): {"role": "caretaker"},
    ("post", "/v1/pets/{pet_id}/transfer"): {"user_id": "{member_id}"},  # World.body puts the member's id in
    ("delete", "/v1/users/me"): {"password": PASSWORD},
    ("post", "/v1/password-resets"): {"email": "owner@example.com"},
    ("post", "/v1/users/me/mfa"): {"password": PASSWORD},
}
QUERIES = {("delete", "/v1/sessions"): "?others=true"}  # a valid query for each route that needs one
# (case, expected status, expected error_code)
CASES = {
    "no token": (401, 1003),
    "malformed header": (401, 1003),
    "tampered signature": (401, 10031),
    "tampered payload": (401, 10031),
    "expired": (401, 10032),
    "revoked": (401, 10033),
    "disabled user": (401, 10033),
    "missing scope": (403, 1004),
    "another user's object": (404, 1002),
}
MALFORMED = ["Basic b3duZXI6cGFzc3dvcmQ=", "Bearer", "Bearer ", "Bearer a b", "Token abc", "Bearer\tabc",
             "bearer", "", "Bearer  "]
MASS_ASSIGNED = ("id", "owner_id", "role", "version")
BINARY_ROUTES = ("/v1/pets/{pet_id}/photo",)  # bodies and answers are images: their own matrix, below


def _routes() -> list[tuple[str, str, Any]]:
    return [(path, method, fn) for path, method, fn, _ in make_app(profile()).route_table()]


def _streams() -> set[tuple[str, str]]:
    """(path, method) of the operations answering with an event stream."""
    return {(p, m) for p, m, fn in _routes()
            if getattr(getattr(fn, "operation", None), "media_type", None) == "text/event-stream"}


def _protected() -> list[tuple[str, str, frozenset[str]]]:
    return [(p, m, fn.required_scopes) for p, m, fn in _routes() if hasattr(fn, "required_scopes")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "protected_route" in metafunc.fixturenames:
        params, ids = [], []
        for path, method, scopes in _protected():
            if path in BINARY_ROUTES:
                continue  # they take no JSON body: test_photo_route_refuses_the_wrong_caller
            for case in CASES:
                if case == "missing scope" and not scopes:
                    continue  # any valid token will do
                if case == "another user's object" and "{pet_id}" not in path and "{invitation_id}" not in path:
                    continue  # no object of another user is named in the path
                params.append((path, method, scopes, case))
                ids.append(f"{method.upper()} {path} | {case}")
        metafunc.parametrize("protected_route", params, ids=ids)
    if "photo_route" in metafunc.fixturenames:
        _parametrize_photo_routes(metafunc)
    if "body_route" in metafunc.fixturenames:
        params, ids = [], []
        for path, method, fn in _routes():
            body_model = getattr(getattr(fn, "operation", None), "body", None)
            if body_model is None:
                continue
            for name in MASS_ASSIGNED:
                if name not in body_model.model_fields:  # an admin may set a user's role: declared, not assigned
                    params.append((path, method, name))
                    ids.append(f"{method.upper()} {path} | {name}")
        metafunc.parametrize("body_route", params, ids=ids)


@dataclass
class World:
    owner_id: int
    owner_token: str
    other_token: str
    admin_token: str
    pet_id: int
    record_id: int
    caretaker_token: str  # members of the pet, through accepted invitations
    viewer_token: str
    member_id: int  # one more viewer: the member that member routes and transfers name
    invitee_token: str  # has a pending invitation to the pet (invitation_id), no role yet
    invitation_id: int
    session_id: int  # the owner's login session
    refresh_token: str
    reset_token: str  # the owner's single-use tokens
    verify_token: str
    mfa_secret: str  # the owner's pending second factor: its code confirms it, or turns it off

    def url(self, path: str) -> str:
        user_id = self.member_id if path.startswith("/v1/pets/") else self.owner_id
        return path.format(pet_id=self.pet_id, record_id=self.record_id, user_id=user_id,
                           invitation_id=self.invitation_id, session_id=self.session_id)

    def body(self, method: str, path: str) -> Any:
        """The route's valid body (BODIES), "{member_id}" replaced by the member's id; the single-use tokens of
        this world for the routes that take one."""
        dynamic = {("post", "/v1/tokens/refresh"): {"refresh_token": self.refresh_token},
                   ("post", "/v1/password-resets/confirm"): {"token": self.reset_token, "password": "fresh-pass-Q9z"},
                   ("post", "/v1/email-verifications/confirm"): {"token": self.verify_token},
                   ("post", "/v1/users/me/mfa/confirm"): {"code": pyotp.TOTP(self.mfa_secret).now()},
                   ("delete", "/v1/users/me/mfa"): {"password": PASSWORD, "code": pyotp.TOTP(self.mfa_secret).now()}}
        if (method, path) in dynamic:
            return dynamic[(method, path)]
        body = BODIES.get((method, path))
        return None if body is None else {k: self.member_id if v == "{member_id}" else v for k, v in body.items()}


@pytest.fixture
def world(io_loop: Any, app: Any, api: Any) -> World:
    """An owner with a pet and a record, its caretaker, two viewers and an invitee, another user and an admin."""
    return io_loop.run_sync(lambda: _build_world(app, api))


async def _build_world(app: Any, api: Any) -> World:
    owner = await create_user(app, email="owner@example.com")  # unverified: it may ask for the mail
    other = await create_user(app)
    admin = await create_user(app, role="admin")
    login = await api.login("owner@example.com")
    owner_token, refresh_token = login.body["data"]["token"], login.body["data"]["refresh_token"]
    feed = await api.post("/v1/users/me/calendar", token=owner_token)  # what DELETE /v1/users/me/calendar revokes
    pet = await api.post("/v1/pets", json={"name": "Owned", "species": "dog"}, token=owner_token)
    record = await api.post(f"/v1/pets/{pet.body['data']['id']}/records",
                            json={"kind": "vaccination", "date": "2024-01-01"}, token=owner_token)
    assert (pet.status, record.status, feed.status) == (201, 201, 201)
    pet_id = pet.body["data"]["id"]
    tokens, ids = {}, {}
    for name, role in (("caretaker", "caretaker"), ("viewer", "viewer"), ("member", "viewer"), ("invitee", None)):
        user = await create_user(app, email=f"{name}@example.com", verified=True)
        ids[name], tokens[name] = user.id, token_for(app, user.id)
        invited = await api.post(f"/v1/pets/{pet_id}/invitations", json={"email": user.email, "role": role or "viewer"},
                                 token=owner_token)
        assert invited.status == 201, invited.body
        ids[f"{name} invitation"] = invited.body["data"]["id"]
        if role is not None:
            accepted = await api.post(f"/v1/invitations/{invited.body['data']['id']}/accept", token=tokens[name])
            assert accepted.status == 200, accepted.body
    session = await app.db.fetch_one("SELECT id FROM sessions WHERE user_id = %s", (owner.id,))  # the login's
    single_use = {}
    for purpose in ("reset", "verify"):
        single_use[purpose] = new_secret()
        await app.db.execute("INSERT INTO account_tokens (token_hash, purpose, user_id, created_at_ms, expires_at_ms)"
                             " VALUES (%s, %s, %s, 0, %s)", (hash_token(single_use[purpose]), purpose, owner.id,
                                                             int(time.time() * 1000) + 600_000))
    mfa_secret = pyotp.random_base32(32)
    await app.db.execute("INSERT INTO mfa_factors (user_id, secret, created_at) VALUES (%s, %s, %s)",
                         (owner.id, mfa_secret, utcnow()))
    return World(owner.id, owner_token, token_for(app, other.id), token_for(app, admin.id, ALL_SCOPES), pet_id,
                 record.body["data"]["id"], tokens["caretaker"], tokens["viewer"], ids["member"], tokens["invitee"],
                 ids["invitee invitation"], session[0], refresh_token, single_use["reset"], single_use["verify"],
                 mfa_secret)


def _expired(app: Any, user_id: int) -> str:
    serializer = URLSafeTimedSerializer(app.config.signing_keys, salt=SALT, **SIGNING)
    ago = app.config.token_expiration + 60
    serializer.get_timestamp = lambda: int(time.time()) - ago  # type: ignore[method-assign]
    return serializer.dumps({"uid": user_id, "scp": list(ALL_SCOPES), "jti": "old",
                             "iat": int((time.time() - ago) * 1000)})


def _tampered_signature(token: str) -> str:
    payload, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    return f"{payload}.{signature[:middle]}{'A' if signature[middle] != 'A' else 'B'}{signature[middle + 1:]}"


def _tampered_payload(token: str, **changes: Any) -> str:
    """The token with its payload rewritten and its signature kept: always a bad signature. A payload that
    itsdangerous compressed starts with "." (so the token cannot be split on every dot) and holds zlib data."""
    signed, _, signature = token.rpartition(".")
    payload, _, timestamp = signed.rpartition(".")
    compressed = payload.startswith(".")
    raw = base64_decode(payload.removeprefix("."))
    data = orjson.loads(zlib.decompress(raw) if compressed else raw)
    forged = base64_encode(orjson.dumps({**data, **changes})).decode()
    assert forged != payload
    return f"{forged}.{timestamp}.{signature}"


async def _headers_for(case: str, app: Any, api: Any, world: World, scopes: frozenset[str]) -> list[dict[str, str]]:
    """The Authorization headers (one or several variants) of a case."""
    if case == "no token":
        return [{}]
    if case == "malformed header":
        return [{"Authorization": h} for h in MALFORMED] + [{"Authorization": f"Basic {world.owner_token}"}]
    if case == "tampered signature":
        return [{"Authorization": f"Bearer {_tampered_signature(world.owner_token)}"}]
    if case == "tampered payload":  # the owner's token rewritten to claim every scope
        return [{"Authorization": f"Bearer {_tampered_payload(world.owner_token, scp=list(ALL_SCOPES))}"}]
    if case == "expired":
        return [{"Authorization": f"Bearer {_expired(app, world.owner_id)}"}]
    if case == "revoked":
        token = await api.token("owner@example.com")
        assert (await api.delete("/v1/tokens/current", token=token)).status == 200
        return [{"Authorization": f"Bearer {token}"}]
    if case == "disabled user":
        disabled = await api.patch(f"/v1/users/{world.owner_id}", json={"disabled": True}, token=world.admin_token)
        assert disabled.status == 200, disabled.body
        return [{"Authorization": f"Bearer {world.owner_token}"}]
    if case == "missing scope":
        granted = sorted(set(ALL_SCOPES) - scopes)
        return [{"Authorization": f"Bearer {token_for(app, world.owner_id, granted)}"}]
    assert case == "another user's object"
    return [{"Authorization": f"Bearer {world.other_token}"}]


def _caller_token(world: World, scopes: frozenset[str], path: str = "") -> str:
    if path.startswith("/v1/invitations/"):
        return world.invitee_token  # only the invitee may answer an invitation
    return world.admin_token if "users:admin" in scopes else world.owner_token


@pytest.mark.gen_test(timeout=30)
async def test_protected_route_refuses_the_wrong_caller(app, api, world, protected_route):
    path, method, scopes, case = protected_route
    status, code = CASES[case]
    url = world.url(path)
    body = world.body(method, path)
    query = QUERIES.get((method, path), "")
    before = await api.get(f"/v1/pets/{world.pet_id}", token=world.admin_token)
    for headers in await _headers_for(case, app, api, world, scopes):
        response = await api.request(method.upper(), url + query, json=body, headers=headers)
        assert (response.status, response.body["error_code"]) == (status, code), (headers, response.body)
        assert response.body["request"] == f"{method.upper()} {url}"
        assert "data" not in response.body
    after = await api.get(f"/v1/pets/{world.pet_id}", token=world.admin_token)
    assert after.body == before.body  # nothing was written by the refused calls
    if case == "disabled user":
        return  # the rightful caller is disabled now
    # The control: the rightful caller gets through on the same route with the same body (an event stream's head
    # only: its GET stays open as long as the client does).
    verb = "HEAD" if (path, method) in _streams() else method.upper()
    rightful = await api.request(verb, url + query, json=body, token=_caller_token(world, scopes, path))
    assert rightful.status in (200, 201, 202), rightful.body


@pytest.mark.gen_test(timeout=30)
async def test_another_users_objects_are_not_listed_or_filterable(api, world):
    for query in ("", "?limit=100", f"?owner_id={world.owner_id}", "?q=Owned"):
        listed = await api.get(f"/v1/pets{query}", token=world.other_token)
        assert listed.status == 200
        assert listed.body["data"] == [] and listed.body["page"]["total"] == 0, query
    admin = await api.get(f"/v1/pets?owner_id={world.owner_id}", token=world.admin_token)
    assert [p["id"] for p in admin.body["data"]] == [world.pet_id]
    record = await api.get(f"/v1/pets/{world.pet_id + 1000}/records/{world.record_id}", token=world.owner_token)
    assert (record.status, record.body["error_code"]) == (404, 1002)


@pytest.mark.gen_test(timeout=30)
async def test_public_routes_ignore_a_bad_token(api, world):
    bad = {"Authorization": "Bearer not-a-token"}
    for path, method, fn in _routes():
        if hasattr(fn, "required_scopes") or "{" in path:
            continue
        response = await api.request(method.upper(), path, json=world.body(method, path), headers=bad)
        assert response.status in (200, 201, 202), (method, path, response.status, response.body)


@pytest.mark.gen_test(timeout=30)
async def test_server_owned_fields_are_refused_in_every_body(app, api, world, body_route):
    path, method, field = body_route
    url = world.url(path)
    body = {**world.body(method, path), field: 1 if field != "role" else "admin"}
    if path == "/v1/users":
        body["email"] = "fresh@example.com"
    token = _caller_token(world, frozenset({"users:admin"} if "{user_id}" in path else ()))
    pets_before = await api.get("/v1/pets?limit=100", token=world.admin_token)
    response = await api.request(method.upper(), url, json=body, token=token)
    assert (response.status, response.body["error_code"]) == (400, 1001), response.body
    assert field in [e["field"] for e in response.body["errors"]], response.body
    assert (await api.get("/v1/pets?limit=100", token=world.admin_token)).body == pets_before.body
    me = await api.get("/v1/users/me", token=world.owner_token)
    assert me.body["data"]["role"] == "user"


# Roles on a pet (issue 14): every route under a pet and every households route x every kind of caller, the status
# each gets (and the code of a refusal). "wrong user" has no role on the pet; "admin" has pets:admin and no role;
# "invitee" holds the pending invitation the invitation routes name and no role yet.
CALLERS = ("no token", "wrong user", "viewer", "caretaker", "owner", "admin", "invitee")
DENIED, NO_ROLE, NO_TOKEN = (403, 1004), (404, 1002), (401, 1003)
READ = (NO_TOKEN, NO_ROLE, 200, 200, 200, 200, NO_ROLE)
ROLE_MATRIX: dict[tuple[str, str], tuple[Any, ...]] = {
    ("get", "/v1/pets/{pet_id}"): READ,
    ("patch", "/v1/pets/{pet_id}"): (NO_TOKEN, NO_ROLE, DENIED, 200, 200, 200, NO_ROLE),
    ("delete", "/v1/pets/{pet_id}"): (NO_TOKEN, NO_ROLE, DENIED, DENIED, 200, 200, NO_ROLE),
    ("get", "/v1/pets/{pet_id}/records"): READ,
    ("post", "/v1/pets/{pet_id}/records"): (NO_TOKEN, NO_ROLE, DENIED, 201, 201, 201, NO_ROLE),
    ("get", "/v1/pets/{pet_id}/records/{record_id}"): READ,
    ("patch", "/v1/pets/{pet_id}/records/{record_id}"): (NO_TOKEN, NO_ROLE, DENIED, 200, 200, 200, NO_ROLE),
    ("delete", "/v1/pets/{pet_id}/records/{record_id}"): (NO_TOKEN, NO_ROLE, DENIED, 200, 200, 200, NO_ROLE),
    ("get", "/v1/pets/{pet_id}/invitations"): (NO_TOKEN, NO_ROLE, DENIED, DENIED, 200, 200, NO_ROLE),
    ("post", "/v1/pets/{pet_id}/invitations"): (NO_TOKEN, NO_ROLE, DENIED, DENIED, 201, 201, NO_ROLE),
    ("delete", "/v1/pets/{pet_id}/invitations/{invitation_id}"): (NO_TOKEN, NO_ROLE, DENIED, DENIED, 200, 200,
                                                                  NO_ROLE),
    ("get", "/v1/invitations"): (NO_TOKEN, 200, 200, 200, 200, 200, 200),
    ("post", "/v1/invitations/{invitation_id}/accept"): (NO_TOKEN, NO_ROLE, NO_ROLE, NO_ROLE, NO_ROLE, NO_ROLE, 200),
    ("post", "/v1/invitations/{invitation_id}/decline"): (NO_TOKEN, NO_ROLE, NO_ROLE, NO_ROLE, NO_ROLE, NO_ROLE, 200),
    ("get", "/v1/pets/{pet_id}/members"): READ,
    ("patch", "/v1/pets/{pet_id}/members/{user_id}"): (NO_TOKEN, NO_ROLE, DENIED, DENIED, 200, 200, NO_ROLE),
    ("delete", "/v1/pets/{pet_id}/members/{user_id}"): (NO_TOKEN, NO_ROLE, DENIED, DENIED, 200, 200, NO_ROLE),
    ("post", "/v1/pets/{pet_id}/transfer"): (NO_TOKEN, NO_ROLE, DENIED, DENIED, 200, 200, NO_ROLE),
    ("get", "/v1/pets/{pet_id}/history"): READ,
}


def _role_cases() -> list[Any]:
    return [pytest.param(method, path, caller, expected, id=f"{method.upper()} {path} | {caller}")
            for (method, path), row in ROLE_MATRIX.items() for caller, expected in zip(CALLERS, row, strict=True)]


def _token_of(world: World, caller: str) -> str | None:
    return {"no token": None, "wrong user": world.other_token, "viewer": world.viewer_token,
            "caretaker": world.caretaker_token, "owner": world.owner_token, "admin": world.admin_token,
            "invitee": world.invitee_token}[caller]


async def _household_state(api: Any, world: World) -> list[Any]:
    """What a refused call must leave as it was: the pet, its members, invitations and history."""
    return [(await api.get(f"/v1/pets/{world.pet_id}{suffix}?limit=100", token=world.admin_token)).body
            for suffix in ("", "/members", "/invitations", "/history")]


def test_every_route_under_a_pet_and_every_households_route_is_in_the_role_matrix():
    table = make_app(profile()).route_table()
    mounted = {(method, path) for path, method, _, plugin in table
               if (plugin == "households" or "{pet_id}" in path) and path not in BINARY_ROUTES}  # photos: below
    assert mounted == set(ROLE_MATRIX)


@pytest.mark.parametrize(("method", "path", "caller", "expected"), _role_cases())
@pytest.mark.gen_test(timeout=30)
async def test_each_role_gets_what_it_may_do_on_each_route(api, world, method, path, caller, expected):
    url = world.url(path)
    before = await _household_state(api, world)
    response = await api.request(method.upper(), url, json=world.body(method, path), token=_token_of(world, caller))
    if isinstance(expected, tuple):
        status, code = expected
        assert (response.status, response.body["error_code"]) == (status, code), response.body
        assert response.body["request"] == f"{method.upper()} {url}" and "data" not in response.body
        assert await _household_state(api, world) == before  # a refusal writes nothing
    else:
        assert response.status == expected, response.body
        assert response.body["code"] == expected and response.body["message"] == "ok", response.body
        if path == "/v1/invitations":  # each caller sees only the invitations to their own address
            assert [i["id"] for i in response.body["data"]] == ([world.invitation_id] if caller == "invitee" else [])


@pytest.mark.gen_test
async def test_the_document_says_a_role_refuses_with_403_exactly_where_one_does(api):
    """The API document's 403 of every route where a role refuses (403/1004 in the role matrix, the photo's
    writes) names the roles that may; elsewhere it names the scope only."""
    document = (await api.get("/v1/openapi.json")).body
    refusing = {route for route, row in ROLE_MATRIX.items() if DENIED in row}
    refusing |= {(method, path) for method in ("put", "delete") for path in BINARY_ROUTES}
    said = {(method, path): op["responses"]["403"]["description"] for path, item in document["paths"].items()
            for method, op in item.items() if "403" in op.get("responses", {})}
    assert refusing <= set(said)
    assert {route for route, text in said.items() if "role on the pet" in text} == refusing
    assert said[("patch", "/v1/pets/{pet_id}")] == (
        "Forbidden (1004): the token lacks a required scope, or the caller's role on the pet does not allow this: "
        "only `owner` or `caretaker` may (and pets:admin callers, with or without a role)")
    assert said[("delete", "/v1/pets/{pet_id}")].endswith("only `owner` may (and pets:admin callers, with or "
                                                          "without a role)")
    assert said[("get", "/v1/pets/{pet_id}")] == "Forbidden: the token lacks a required scope"


# Care (issue 14): the personal routes of the reminders plugin x every kind of caller. Reminders and feeds follow
# membership only: a member (any role) sees the pet's open due item, anyone else (admins included) nothing.
CARE_MATRIX: dict[tuple[str, str], tuple[Any, ...]] = {
    ("get", "/v1/reminders"): (NO_TOKEN, 200, 200, 200, 200, 200, 200),
    ("post", "/v1/users/me/calendar"): (NO_TOKEN, 201, 201, 201, 201, 201, 201),
    ("delete", "/v1/users/me/calendar"): (NO_TOKEN, 200, 200, 200, 200, 200, 200),  # each caller made one first
    ("get", "/v1/calendar/{token:token}.ics"): (NO_ROLE, 200, 200, 200, 200, 200, 200),  # no token: an unknown one
}
CARE_MEMBERS = {"viewer", "caretaker", "owner"}


def _care_cases() -> list[Any]:
    return [pytest.param(method, path, caller, expected, id=f"{method.upper()} {path} | {caller}")
            for (method, path), row in CARE_MATRIX.items() for caller, expected in zip(CALLERS, row, strict=True)]


def test_every_reminders_route_is_in_the_care_matrix():
    table = make_app(profile()).route_table()
    assert {(method, path) for path, method, _, plugin in table if plugin == "reminders"} == set(CARE_MATRIX)


@pytest.mark.parametrize(("method", "path", "caller", "expected"), _care_cases())
@pytest.mark.gen_test(timeout=30)
async def test_each_caller_gets_only_their_own_reminders_and_feed(api, world, method, path, caller, expected):
    record_url = f"/v1/pets/{world.pet_id}/records/{world.record_id}"
    due = await api.patch(record_url, json={"due_date": "2024-02-01"}, token=world.owner_token)  # an open due item
    assert due.status == 200, due.body
    token = _token_of(world, caller)
    url, shown = path, path
    if path != "/v1/reminders" and token is not None:
        feed = await api.post("/v1/users/me/calendar", token=token)
        assert feed.status == 201, feed.body
        if path.startswith("/v1/calendar/"):
            url = feed.body["data"]["url"]
    if path.startswith("/v1/calendar/"):
        url = url if token is not None else "/v1/calendar/" + "A" * 43 + ".ics"
        shown, token = "/v1/calendar/{token}.ics", None  # the feed takes no Authorization: its token is the path's
    response = await api.request(method.upper(), url, token=token)
    if isinstance(expected, tuple):
        status, code = expected
        assert (response.status, response.body["error_code"]) == (status, code), response.body
        assert response.body["request"] == f"{method.upper()} {shown}" and "data" not in response.body
        return
    assert response.status == expected, response.raw[:300]
    if path == "/v1/reminders":
        seen = [r["id"] for r in response.body["data"]]
        assert seen == ([world.record_id] if caller in CARE_MEMBERS else []), (caller, response.body)
    elif path.startswith("/v1/calendar/"):
        uids = [str(e["UID"]) for e in icalendar.Calendar.from_ical(response.raw).walk("VEVENT")]
        assert uids == ([f"record-{world.record_id}@pet-api"] if caller in CARE_MEMBERS else []), caller
    else:
        assert response.body["code"] == expected and response.body["message"] == "ok", response.body


# ---- the photo routes: an image body (PUT), an image answer (GET); the pet has a photo before each case


def _parametrize_photo_routes(metafunc: pytest.Metafunc) -> None:
    params, ids = [], []
    for path, method, scopes in _protected():
        if path not in BINARY_ROUTES:
            continue
        for case in [*CASES, "viewer"]:
            params.append((path, method, scopes, case))
            ids.append(f"{method.upper()} {path} | {case}")
    metafunc.parametrize("photo_route", params, ids=ids)


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


async def _photo_request(api: Any, method: str, url: str, headers: dict[str, str]) -> Any:
    if method == "put":
        return await api.request("PUT", url, body=_jpeg(), headers={**headers, "Content-Type": "image/jpeg"})
    return await api.request(method.upper(), url, headers=headers)


@pytest.mark.gen_test(timeout=30)
async def test_photo_route_refuses_the_wrong_caller(app, api, world, photo_route):
    """Every wrong caller of the photo routes, plus a viewer of the pet: it reads the photo, never writes it."""
    path, method, scopes, case = photo_route
    url = world.url(path)
    put = await _photo_request(api, "put", url, {"Authorization": f"Bearer {world.owner_token}"})
    assert put.status == 201, put.body
    if case == "viewer":
        viewer = await create_user(app)
        await app.db.execute("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, 'viewer', %s)",
                             (world.pet_id, viewer.id, utcnow()))
        variants = [{"Authorization": f"Bearer {token_for(app, viewer.id)}"}]
        status, code = (200, None) if method == "get" else (403, 1004)
    else:
        variants = await _headers_for(case, app, api, world, scopes)
        status, code = CASES[case]
    for headers in variants:
        response = await _photo_request(api, method, url, headers)
        if code is None:
            assert (response.status, response.headers["Content-Type"]) == (200, "image/jpeg"), response.body
            continue
        assert (response.status, response.body["error_code"]) == (status, code), (headers, response.body)
        assert response.body["request"] == f"{method.upper()} {url}" and "data" not in response.body
    after = await api.get(url, token=world.admin_token)
    assert (after.status, after.headers["ETag"]) == (200, put.body["data"]["etag"][:-1] + '-original"')  # unchanged
    if case == "disabled user":
        return
    rightful = await _photo_request(api, method, url, {"Authorization": f"Bearer {world.owner_token}"})
    assert rightful.status == 200, rightful.body
