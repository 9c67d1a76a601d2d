"""Idempotency-Key on the POSTs that create something: replays, mismatches, scopes, expiry, the document."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from server.app import PetAPI
from server.errors import InvalidParameter
from server.idempotency import fingerprint, parse_key
from tests.factories import Api, Response, assert_error, both_backends, create_pet, unique_email, user_with_token

ORIGIN = "https://app.example.com"  # allowed by the test profile


def key() -> str:
    return f"key-{uuid.uuid4()}"


async def stored_keys(app: PetAPI, idem_key: str) -> int:
    """Rows stored under the key, whoever's."""
    row = await app.db.fetch_one("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = %s", (idem_key,))
    assert row is not None
    return int(row[0])  # type: ignore[arg-type]


async def pet_count(api: Api, token: str) -> int:
    listed = await api.get("/v1/pets", token=token)
    assert listed.status == 200, listed.body
    return int(listed.body["page"]["total"])


def assert_replay(first: Response, again: Response) -> None:
    """The retry's answer is the first one byte for byte, marked as replayed."""
    assert first.status in (200, 201), first.body
    assert "Idempotent-Replayed" not in first.headers
    assert again.status == first.status, again.body
    assert again.raw == first.raw
    assert again.headers["Idempotent-Replayed"] == "true"
    for name in ("Location", "ETag", "Content-Type"):
        assert again.headers.get(name) == first.headers.get(name), name


def test_keys_are_1_to_255_visible_ascii_characters():
    assert parse_key("a") == "a"
    assert parse_key("!" + "x" * 253 + "~") == "!" + "x" * 253 + "~"
    for bad in ("", "x" * 256, "has space", "tab\tin", "caf\u00e9", "new\nline"):
        with pytest.raises(InvalidParameter):
            parse_key(bad)


def test_fingerprints_differ_by_method_path_and_body():
    base = fingerprint("POST", "/v1/pets", b'{"name":"Rex"}')
    assert len(base) == 64
    assert base == fingerprint("POST", "/v1/pets", b'{"name":"Rex"}')
    others = {fingerprint("PUT", "/v1/pets", b'{"name":"Rex"}'), fingerprint("POST", "/v1/pet", b'{"name":"Rex"}'),
              fingerprint("POST", "/v1/pets", b'{"name":"Rex" }')}
    assert len(others | {base}) == 4


@both_backends
@pytest.mark.gen_test
async def test_a_retried_pet_creation_replays_the_first_answer_and_creates_nothing(app, api):
    _, token = await user_with_token(app)
    idem = key()
    body = {"name": "Rex", "species": "dog"}
    first = await api.post("/v1/pets", json=body, token=token, headers={"Idempotency-Key": idem})
    assert first.status == 201, first.body
    assert first.body["data"]["name"] == "Rex"
    assert first.headers["Location"] == f"/v1/pets/{first.body['data']['id']}"
    assert first.headers["ETag"] == '"v1"'
    for _ in range(2):
        assert_replay(first, await api.post("/v1/pets", json=body, token=token, headers={"Idempotency-Key": idem}))
    assert await pet_count(api, token) == 1
    assert await stored_keys(app, idem) == 1
    fetched = await api.get(first.headers["Location"], token=token)
    assert (fetched.status, fetched.body["data"]) == (200, first.body["data"])


@both_backends
@pytest.mark.gen_test
async def test_registration_and_records_replay_with_their_location(app, api):
    idem = key()
    account = {"email": unique_email("idem"), "password": "long-password-1", "nickname": "Ann"}
    first = await api.post("/v1/users", json=account, headers={"Idempotency-Key": idem})
    assert first.status == 201, first.body
    assert first.headers["Location"] == f"/v1/users/{first.body['data']['id']}"
    assert_replay(first, await api.post("/v1/users", json=account, headers={"Idempotency-Key": idem}))
    assert await stored_keys(app, idem) == 1

    token = await api.token(account["email"], account["password"])
    pet = await create_pet(api, token)
    record = {"kind": "weight", "date": "2024-01-02", "value": 12.5}
    path = f"/v1/pets/{pet['id']}/records"
    first = await api.post(path, json=record, token=token, headers={"Idempotency-Key": idem})  # another scope
    assert first.status == 201, first.body
    assert first.headers["Location"] == f"{path}/{first.body['data']['id']}"
    assert_replay(first, await api.post(path, json=record, token=token, headers={"Idempotency-Key": idem}))
    listed = await api.get(path, token=token)
    assert (listed.status, listed.body["page"]["total"]) == (200, 1)
    assert await stored_keys(app, idem) == 2  # 'anon' and the new user's


@both_backends
@pytest.mark.gen_test
async def test_the_same_key_on_another_request_is_422_and_does_nothing(app, api):
    _, token = await user_with_token(app)
    idem = key()
    first = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=token,
                           headers={"Idempotency-Key": idem})
    assert first.status == 201, first.body
    other_body = await api.post("/v1/pets", json={"name": "Max", "species": "dog"}, token=token,
                                headers={"Idempotency-Key": idem})
    assert_error(other_body, 422, 1011, "POST /v1/pets", "Idempotency-Key reused with a different request")
    path = f"/v1/pets/{first.body['data']['id']}/records"
    other_path = await api.post(path, json={"kind": "vet_visit", "date": "2024-01-02"}, token=token,
                                headers={"Idempotency-Key": idem})
    assert_error(other_path, 422, 1011, f"POST {path}")
    chinese = await api.post("/v1/pets", json={"name": "Max", "species": "dog"}, token=token,
                             headers={"Idempotency-Key": idem, "Accept-Language": "zh"})
    assert_error(chinese, 422, 1011, "POST /v1/pets", "幂等键已用于另一个请求")
    assert await pet_count(api, token) == 1
    assert (await api.get(path, token=token)).body["page"]["total"] == 0


@both_backends
@pytest.mark.gen_test
async def test_a_request_that_failed_validation_stores_nothing_and_its_fixed_retry_runs(app, api):
    _, token = await user_with_token(app)
    idem = key()
    refused = await api.post("/v1/pets", json={"name": "", "species": "dog"}, token=token,
                             headers={"Idempotency-Key": idem})
    assert_error(refused, 400, 1001, "POST /v1/pets")
    assert await stored_keys(app, idem) == 0
    fixed = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=token,
                           headers={"Idempotency-Key": idem})
    assert fixed.status == 201, fixed.body
    assert "Idempotent-Replayed" not in fixed.headers
    assert await pet_count(api, token) == 1


@both_backends
@pytest.mark.gen_test
async def test_a_request_refused_by_its_service_stores_nothing_and_its_retry_runs_again(app, api):
    taken = unique_email("taken")
    account = {"email": taken, "password": "long-password-1", "nickname": "Ann"}
    assert (await api.post("/v1/users", json=account)).status == 201
    idem = key()
    for _ in range(2):  # each time the service runs and refuses: not a replay, not a 422
        refused = await api.post("/v1/users", json=account, headers={"Idempotency-Key": idem})
        assert_error(refused, 409, 1005, "POST /v1/users")
        assert "Idempotent-Replayed" not in refused.headers
    assert await stored_keys(app, idem) == 0

    owner, owner_token = await user_with_token(app)
    _, other_token = await user_with_token(app)
    pet = await create_pet(api, owner_token)
    path = f"/v1/pets/{pet['id']}/records"
    record = {"kind": "vet_visit", "date": "2024-01-02"}
    hidden = await api.post(path, json=record, token=other_token, headers={"Idempotency-Key": idem})
    assert_error(hidden, 404, 1002, f"POST {path}")
    assert await stored_keys(app, idem) == 0


@both_backends
@pytest.mark.gen_test
async def test_keys_belong_to_their_user(app, api):
    _, ann = await user_with_token(app)
    _, bob = await user_with_token(app)
    idem = key()
    answers = [await api.post("/v1/pets", json={"name": name, "species": "cat"}, token=token,
                              headers={"Idempotency-Key": idem}) for name, token in (("Ann's", ann), ("Bob's", bob))]
    assert [a.status for a in answers] == [201, 201], [a.body for a in answers]
    assert [a.body["data"]["name"] for a in answers] == ["Ann's", "Bob's"]
    assert answers[0].body["data"]["id"] != answers[1].body["data"]["id"]
    assert not any("Idempotent-Replayed" in a.headers for a in answers)
    assert (await pet_count(api, ann), await pet_count(api, bob)) == (1, 1)


@both_backends
@pytest.mark.gen_test
async def test_an_invalid_key_is_400_naming_the_header_and_creates_nothing(app, api):
    _, token = await user_with_token(app)
    for bad in ("has space", "x" * 256):
        refused = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=token,
                                 headers={"Idempotency-Key": bad})
        assert_error(refused, 400, 1001, "POST /v1/pets", "Idempotency-Key must be 1 to 255 visible ASCII characters")
        assert refused.body["errors"] == [{"field": "Idempotency-Key", "message": "1 to 255 visible ASCII characters"}]
    assert await pet_count(api, token) == 0


@both_backends
@pytest.mark.gen_test
async def test_login_ignores_the_header(app, api):
    user, _ = await user_with_token(app)
    idem = key()
    first = await api.post("/v1/tokens", json={"account": user.email, "secret": "correct-horse-battery"},
                           headers={"Idempotency-Key": idem})
    again = await api.post("/v1/tokens", json={"account": user.email, "secret": "correct-horse-battery"},
                           headers={"Idempotency-Key": idem})
    invalid = await api.post("/v1/tokens", json={"account": user.email, "secret": "correct-horse-battery"},
                             headers={"Idempotency-Key": "not a key"})
    assert [a.status for a in (first, again, invalid)] == [201, 201, 201], [a.body for a in (first, again, invalid)]
    assert len({a.body["data"]["token"] for a in (first, again, invalid)}) == 3
    assert not any("Idempotent-Replayed" in a.headers for a in (first, again, invalid))
    assert await stored_keys(app, idem) == 0


@both_backends
@pytest.mark.parametrize("config_overrides", [{"idempotency_retention_seconds": 1}])
@pytest.mark.gen_test(timeout=30)
async def test_expired_answers_are_purged_in_the_background_and_the_key_runs_afresh(app, api):
    _, token = await user_with_token(app)
    idem = key()
    body = {"name": "Rex", "species": "dog"}
    first = await api.post("/v1/pets", json=body, token=token, headers={"Idempotency-Key": idem})
    assert first.status == 201, first.body
    assert await stored_keys(app, idem) == 1
    for _ in range(100):  # purged every second with a 1 s retention
        if await stored_keys(app, idem) == 0:
            break
        await asyncio.sleep(0.1)
    assert await stored_keys(app, idem) == 0
    again = await api.post("/v1/pets", json=body, token=token, headers={"Idempotency-Key": idem})
    assert again.status == 201, again.body
    assert "Idempotent-Replayed" not in again.headers
    assert again.body["data"]["id"] != first.body["data"]["id"]
    assert await pet_count(api, token) == 2


@pytest.mark.gen_test
async def test_cors_lets_browsers_send_the_key_and_read_the_replay_mark(app, api):
    preflight = await api.request("OPTIONS", "/v1/pets", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    assert preflight.status == 204
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert "idempotency-key" in allowed
    _, token = await user_with_token(app)
    idem = key()
    body = {"name": "Rex", "species": "dog"}
    first = await api.post("/v1/pets", json=body, token=token, headers={"Idempotency-Key": idem, "Origin": ORIGIN})
    again = await api.post("/v1/pets", json=body, token=token, headers={"Idempotency-Key": idem, "Origin": ORIGIN})
    assert_replay(first, again)
    exposed = {h.strip() for h in again.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Idempotent-Replayed", "Location", "ETag"} <= exposed


@pytest.mark.gen_test
async def test_the_document_declares_the_key_on_the_creating_posts_only(app, api):
    response = await api.get("/v1/openapi.json")
    assert response.status == 200
    paths = response.body["paths"]
    for path in ("/v1/pets", "/v1/users", "/v1/pets/{pet_id}/records"):
        post = paths[path]["post"]
        parameter = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")
        assert (parameter["in"], parameter["required"], parameter["schema"]["pattern"]) == (
            "header", False, r"^[\x21-\x7e]{1,255}$")
        assert {"409", "422"} <= set(post["responses"])
        assert post["responses"]["201"]["headers"]["Idempotent-Replayed"]["required"] is False
    assert not any(p["name"] == "Idempotency-Key" for p in paths["/v1/tokens"]["post"]["parameters"])
    schemas = response.body["components"]["schemas"]
    assert schemas["Error422"]["allOf"][1]["properties"]["error_code"]["enum"] == [1011]
    conflicts = schemas["Error409"]["allOf"][1]["properties"]["error_code"]["enum"]
    assert [code for code in conflicts if code < 2000] == [1005, 1010]  # the core's; enabled plugins add theirs
    errors = await api.get("/v1/errors")
    assert {(e["error_code"], e["http_status"]) for e in errors.body["data"]} >= {(1010, 409), (1011, 422)}
