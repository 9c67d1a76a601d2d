"""Property tests (hypothesis): token and request parsing only ever fail with the API's own errors, and a
real server answers arbitrary bodies, query strings and headers with zero 5xx and without crashing."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import string
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from server.auth import SALT, SIGNING, TokenSigner, bearer_token
from server.errors import AuthFailed, InvalidParameter, TokenExpired, TokenInvalid
from server.plugins.accounts.models import AdminUserUpdate, MeUpdate, PageQuery, TokenCreate, UserCreate
from server.plugins.pets.models import PetCreate, PetListQuery, PetUpdate
from server.plugins.records.models import RecordCreate, RecordListQuery
from server.validation import parse_json, validate
from tests.conftest import migrated_database
from tests.conftest import test_config as profile
from tests.processes import ServerProcess, clean_env

KEYS = profile().signing_keys
TOKEN_EXPIRATION = 3600
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OVER_HTTP = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)
latin1_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                      max_size=120)


# ---- token parsing ----------------------------------------------------------------------------------------

@FAST
@given(latin1_text)
def test_bearer_header_parsing_gives_a_clean_token_or_auth_failed(header: str):
    try:
        token = bearer_token(header)
    except AuthFailed:
        return
    assert token and " " not in token and token == token.strip()
    assert header.lower().startswith("bearer ") and token in header


@FAST
@given(st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=200))
def test_bearer_header_round_trips_any_token(token: str):
    assert bearer_token(f"Bearer {token}") == token
    assert bearer_token(f"bearer  {token} ") == token


def _mutations(token: str) -> st.SearchStrategy[str]:
    """Tokens a few edits away from a valid one: the interesting neighbourhood."""
    def edit(data: tuple[int, int, str]) -> str:
        position, kind, char = data
        position %= len(token) + 1
        if kind == 0:
            return token[:position] + char + token[position:]
        if kind == 1:
            return token[:position] + token[position + 1:]
        return token[:position] + char + token[position + 1:]

    return st.tuples(st.integers(0, 10_000), st.integers(0, 2), st.characters()).map(edit)


VALID = TokenSigner(KEYS, token_expiration=TOKEN_EXPIRATION).issue(1, ["pets:read"]).token


@FAST
@given(st.one_of(st.text(max_size=300), latin1_text, _mutations(VALID)))
def test_verify_never_raises_anything_but_token_errors(token: str):
    signer = TokenSigner(KEYS, token_expiration=TOKEN_EXPIRATION)
    try:
        principal = signer.verify(token)
    except (TokenInvalid, TokenExpired):
        return
    assert token == VALID and principal.user_id == 1  # nothing else verifies


@FAST
@given(payload=json_values, age=st.integers(-10**6, 10**6))
def test_verify_of_any_signed_payload_is_a_principal_or_token_error(payload: Any, age: int):
    """Even a correctly signed token (a leaked or rotated key, a bug elsewhere) cannot make verify crash."""
    serializer = URLSafeTimedSerializer(KEYS, salt=SALT, **SIGNING)
    serializer.get_timestamp = lambda: int(time.time()) - age  # type: ignore[method-assign]
    token = serializer.dumps(payload)
    try:
        principal = TokenSigner(KEYS, token_expiration=TOKEN_EXPIRATION).verify(token)
    except (TokenInvalid, TokenExpired):
        return
    assert isinstance(principal.user_id, int) and isinstance(principal.scopes, frozenset)


@FAST
@given(uid=st.integers() | st.floats() | st.text(max_size=30) | st.none(),
       scp=st.lists(st.text(max_size=20), max_size=4) | json_scalars,
       jti=json_scalars, iat=st.integers() | st.floats() | st.text(max_size=30) | st.none())
def test_verify_of_signed_claims_with_any_values_never_crashes(uid: Any, scp: Any, jti: Any, iat: Any):
    token = URLSafeTimedSerializer(KEYS, salt=SALT, **SIGNING).dumps({"uid": uid, "scp": scp, "jti": jti, "iat": iat})
    with contextlib.suppress(TokenInvalid, TokenExpired):
        TokenSigner(KEYS, token_expiration=TOKEN_EXPIRATION).verify(token)


# ---- request parsing --------------------------------------------------------------------------------------

BODY_MODELS = [UserCreate, MeUpdate, AdminUserUpdate, TokenCreate, PetCreate, PetUpdate, RecordCreate]
QUERY_MODELS = [PageQuery, PetListQuery, RecordListQuery]


def _field_values(model: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the model's own field names (and a few others) holding arbitrary JSON values."""
    names = [*model.model_fields, "id", "owner_id", "version", "role", ""]
    return st.dictionaries(st.sampled_from(names), json_values | st.dates().map(str), max_size=7)


@FAST
@given(st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode()), st.sampled_from(BODY_MODELS))
def test_body_parsing_gives_a_model_or_400(raw: bytes, model: Any):
    try:
        validate(model, parse_json(raw))
    except InvalidParameter as exc:
        assert exc.status == 400 and exc.code == 1001
        assert exc.errors and all(isinstance(e["field"], str) and isinstance(e["message"], str) for e in exc.errors)
        orjson.dumps(exc.errors)


@FAST
@given(st.data(), st.sampled_from(BODY_MODELS))
def test_bodies_with_the_models_field_names_give_a_model_or_400(data: st.DataObject, model: Any):
    try:
        validate(model, data.draw(_field_values(model)))
    except InvalidParameter as exc:
        assert exc.errors and {e["field"] for e in exc.errors} - {""} is not None


QUERY_KEYS = ["limit", "offset", "q", "sort", "species", "status", "owner_id", "kind", "x"]


@FAST
@given(st.dictionaries(st.sampled_from(QUERY_KEYS),
                       st.text(max_size=30), max_size=6), st.sampled_from(QUERY_MODELS))
def test_query_parsing_gives_a_model_or_400(query: dict[str, str], model: Any):
    try:
        validate(model, query)
    except InvalidParameter as exc:
        assert {e["field"] for e in exc.errors} <= set(query) | {"body"}, exc.errors


# ---- over HTTP, against a real server -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(mysql_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("fuzz") / "server.log", clean_env(
            PET_API_DATABASE_URL=migrated_database(mysql_server_url, "fuzz"), PET_API_LOG_LEVEL="WARNING")) as proc:
        yield proc
        assert proc.proc.poll() is None, "the server died"
        assert "Traceback" not in proc.output(), proc.output()[-3000:]


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> dict[str, Any]:
    owner = server.request("POST", "/v1/users", json={
        "email": "fuzz@example.com", "password": "a-long-test-passphrase", "nickname": "f"}).answer()
    victim = server.request("POST", "/v1/users", json={
        "email": "victim@example.com", "password": "a-long-test-passphrase", "nickname": "v"}).answer()
    assert (owner[0], victim[0]) == (201, 201)
    world = {"user_id": owner[1]["data"]["id"], "victim_id": victim[1]["data"]["id"]}
    token = _token(world["user_id"])
    pet = server.request("POST", "/v1/pets", body=b'{"name": "Fuzzy", "species": "cat"}', token=token).answer()
    record = server.request("POST", f"/v1/pets/{pet[1]['data']['id']}/records",
                            body=b'{"kind": "weight", "date": "2024-01-01", "value": 4}', token=token).answer()
    assert (pet[0], record[0]) == (201, 201)
    return {**world, "pet_id": pet[1]["data"]["id"], "record_id": record[1]["data"]["id"]}


def _token(user_id: int) -> str:
    """A fresh token with every scope (a password change revokes the earlier ones)."""
    return TokenSigner(KEYS, token_expiration=TOKEN_EXPIRATION).issue(
        user_id, ["users:me", "pets:read", "pets:write", "users:admin", "pets:admin"]).token


def _check(status: int, body: Any, what: Any) -> None:
    assert status < 500, (status, body, what)
    if status >= 400:
        assert set(body) >= {"error_code", "message", "request"} and "trace" not in body, body
    else:
        assert body["code"] == status and body["message"] == "ok", body


WRITES = ["POST /v1/pets", "PATCH /v1/pets/{pet_id}", "POST /v1/pets/{pet_id}/records", "PATCH /v1/users/me",
          "POST /v1/users", "POST /v1/tokens", "PATCH /v1/users/{victim_id}"]
MODEL_OF = dict(zip(WRITES, [PetCreate, PetUpdate, RecordCreate, MeUpdate, UserCreate, TokenCreate, AdminUserUpdate],
                    strict=True))
READS = ["/v1/pets", "/v1/pets/{pet_id}/records", "/v1/users", "/v1/pets/{pet_id}", "/v1/errors"]
dates = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(str)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@OVER_HTTP
@given(st.sampled_from(WRITES), st.data(), st.sampled_from(["field values", "any JSON", "any bytes"]),
       st.none() | header_values)
def test_any_body_to_a_write_route_is_never_a_5xx(server, world, route, data, kind, if_match):
    method, path = route.split()
    if kind == "field values":
        fields = data.draw(_field_values(MODEL_OF[route]) | st.fixed_dictionaries(
            {"name": st.text(max_size=70), "species": st.sampled_from(["dog", "cat"])},
            optional={"birth_date": dates, "breed": st.text(max_size=70) | st.none(), "kind": st.just("weight"),
                      "date": dates, "value": st.floats(), "note": st.text(max_size=100),
                      "email": st.emails() | st.text(max_size=80), "password": st.text(max_size=20),
                      "nickname": st.text(max_size=70)}))
        raw = json.dumps(fields).encode()
    elif kind == "any JSON":
        raw = json.dumps(data.draw(json_values)).encode()
    else:
        raw = data.draw(st.binary(max_size=300))
    headers = {"If-Match": if_match} if if_match is not None else {}
    status, body = server.request(method, path.format(**world), body=raw, token=_token(world["user_id"]),
                                  headers=headers).answer()
    _check(status, body, (route, raw, headers))


@OVER_HTTP
@given(st.sampled_from(READS), st.lists(st.tuples(st.sampled_from(QUERY_KEYS) | st.text(max_size=8),
                                                  st.text(max_size=40) | st.integers().map(str)), max_size=5),
       st.none() | header_values, st.booleans())
def test_any_query_string_is_never_a_5xx(server, world, path, pairs, accept_language, raw_bytes):
    query = urllib.parse.urlencode(pairs)
    if raw_bytes:  # percent-escapes of bytes that are not UTF-8
        query += "&q=%FF%FE%00" if pairs else "q=%C3%28"
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    target = path.format(**world) + ("?" + query if query else "")
    status, body = server.request("GET", target, token=_token(world["user_id"]), headers=headers).answer()
    _check(status, body, target)


@OVER_HTTP
@given(st.from_regex(r"\A/v1/(pets|users|tokens|errors|health)(/[0-9a-z%._-]{0,25}){0,3}\Z"),
       st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"]))
def test_any_path_and_method_is_never_a_5xx(server, world, path, method):
    status, body = server.request(method, path, body=b"{}", token=_token(world["user_id"])).answer()
    if status == 204:
        assert method == "OPTIONS" and body is None
    else:
        _check(status, body, (method, path))
