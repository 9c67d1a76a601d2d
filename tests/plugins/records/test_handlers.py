"""Health records over HTTP: a second plugin under /v1/pets/{id}, guarded by the pet's ownership rule."""

import datetime as dt
import re
from typing import Any

import orjson
import pytest

from tests.factories import assert_error, both_backends, create_pet, user_with_token

RECORD_FIELDS = {"id", "pet_id", "kind", "date", "note", "value", "due_date", "completed_at", "created_at",
                 "updated_at", "version"}


async def add_record(api: Any, token: str, pet_id: int, **fields: Any) -> dict[str, Any]:
    response = await api.post(f"/v1/pets/{pet_id}/records", token=token,
                              json={"kind": "weight", "date": "2024-01-01", **fields})
    assert response.status == 201, response.body
    return response.body["data"]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_create_list_read_delete(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    base = f"/v1/pets/{pet['id']}/records"
    empty = await api.get(base, token=token)
    assert empty.body == {"code": 200, "data": [], "message": "ok",
                          "page": {"limit": 20, "offset": 0, "total": 0, "next_cursor": None}}

    created = await api.post(base, token=token, json={"kind": "weight", "date": "2024-03-01", "value": 12.5,
                                                      "note": "after lunch"})
    assert created.status == 201, created.body
    record = created.body["data"]
    assert set(record) == RECORD_FIELDS
    assert (record["pet_id"], record["kind"], record["date"], record["note"], record["value"]) == (
        pet["id"], "weight", "2024-03-01", "after lunch", 12.5)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", record["created_at"])
    assert created.headers["Location"] == f"{base}/{record['id']}"
    vaccination = await add_record(api, token, pet["id"], kind="vaccination", date="2024-05-01")
    assert (vaccination["note"], vaccination["value"]) == (None, None)
    older = await add_record(api, token, pet["id"], kind="vet_visit", date="2023-12-24", note="n" * 2000)
    medication = await add_record(api, token, pet["id"], kind="medication", date="2024-05-01", value=0)
    assert medication["value"] == 0

    read = await api.get(created.headers["Location"], token=token)
    assert read.body == {"code": 200, "data": record, "message": "ok"}
    listed = await api.get(base, token=token)
    assert [r["id"] for r in listed.body["data"]] == [medication["id"], vaccination["id"], record["id"], older["id"]]
    assert listed.body["page"] == {"limit": 20, "offset": 0, "total": 4, "next_cursor": None}
    page = await api.get(f"{base}?limit=2&offset=1", token=token)
    assert [r["id"] for r in page.body["data"]] == [vaccination["id"], record["id"]]
    assert page.body["page"] == {"limit": 2, "offset": 1, "total": 4,
                                 "next_cursor": page.body["page"]["next_cursor"]}
    rest = await api.get(f"{base}?limit=2&cursor={page.body['page']['next_cursor']}", token=token)
    assert [r["id"] for r in rest.body["data"]] == [older["id"]]
    assert rest.body["page"] == {"limit": 2, "offset": 0, "total": 4, "next_cursor": None}
    kind = await api.get(f"{base}?kind=vet_visit", token=token)
    assert kind.body["data"] == [older] and kind.body["page"]["total"] == 1

    deleted = await api.delete(f"{base}/{record['id']}", token=token)
    assert deleted.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.get(f"{base}/{record['id']}", token=token), 404, 1002, f"GET {base}/{record['id']}")
    assert_error(await api.delete(f"{base}/{record['id']}", token=token), 404, 1002,
                 f"DELETE {base}/{record['id']}")
    assert (await api.get(base, token=token)).body["page"]["total"] == 3


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_negative_zero_value_is_zero_in_every_answer_of_its_version(api, app):
    """-0.0 is the number 0 (JSON has one zero) and neither database keeps its sign, so the POST, its replay, the
    GETs and sync (whose data is exactly what the GET returns) all say 0.0 under the one ETag "v1"."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    base = f"/v1/pets/{pet['id']}/records"
    first_sync = await api.get("/v1/sync", token=token)
    assert first_sync.status == 200 and first_sync.body["data"]["has_more"] is False
    body = b'{"kind": "weight", "date": "2024-01-01", "value": -0.0}'
    created = await api.post(base, body=body, token=token, headers={"Idempotency-Key": "k-negzero"})
    assert (created.status, created.headers["ETag"]) == (201, '"v1"'), created.body
    record = created.body["data"]
    assert b'"value":0.0' in created.raw and b"-0.0" not in created.raw
    replay = await api.post(base, body=body, token=token, headers={"Idempotency-Key": "k-negzero"})
    assert (replay.status, replay.headers["Idempotent-Replayed"], replay.raw) == (201, "true", created.raw)
    read = await api.get(created.headers["Location"], token=token)
    assert (read.body["data"], read.headers["ETag"]) == (record, '"v1"')
    assert (await api.get(base, token=token)).body["data"] == [record]
    delta = await api.get(f"/v1/sync?cursor={first_sync.body['data']['cursor']}", token=token)
    assert [(c["type"], c["op"], c["version"] > 0, c["data"]) for c in delta.body["data"]["changes"]] == [
        ("record", "upsert", True, record)]
    assert b"-0.0" not in delta.raw
    assert [c["data"] for c in (await api.get("/v1/sync", token=token)).body["data"]["changes"]
            if c["type"] == "record"] == [record]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_delete_honours_if_match(api, app):
    """DELETE takes If-Match as the record's PATCH does: a stale, weak or unrecognised tag is 412/1009 and the
    record stays; its current tag or '*' deletes it; a missing record is still 404."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"], note="kept")
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    for tag in ('"v999"', '"v2"', 'W/"v1"', '"v01"', "garbage", ""):
        assert_error(await api.delete(path, token=token, headers={"If-Match": tag}), 412, 1009, f"DELETE {path}")
        kept = await api.get(path, token=token)
        assert (kept.status, kept.body["data"], kept.headers["ETag"]) == (200, record, '"v1"'), tag
    assert (await api.get(f"/v1/pets/{pet['id']}/records", token=token)).body["page"]["total"] == 1
    deleted = await api.delete(path, token=token, headers={"If-Match": '"v0", "v1"'})
    assert deleted.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.get(path, token=token), 404, 1002, f"GET {path}")
    assert_error(await api.delete(path, token=token, headers={"If-Match": '"v1"'}), 404, 1002, f"DELETE {path}")
    other = await add_record(api, token, pet["id"])
    other_path = f"/v1/pets/{pet['id']}/records/{other['id']}"
    assert (await api.delete(other_path, token=token, headers={"If-Match": "*"})).status == 200
    document = (await api.get("/v1/openapi.json")).body
    described = document["paths"]["/v1/pets/{pet_id}/records/{record_id}"]["delete"]
    assert "412" in described["responses"]
    assert "If-Match" in [p["name"] for p in described["parameters"] if p["in"] == "header"]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_deleting_a_pet_deletes_its_records(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    kept = await create_pet(api, token, name="Kept")
    gone = [await add_record(api, token, pet["id"]) for _ in range(3)]
    other = await add_record(api, token, kept["id"])
    assert (await api.delete(f"/v1/pets/{pet['id']}", token=token)).status == 200
    assert_error(await api.get(f"/v1/pets/{pet['id']}/records", token=token), 404, 1002,
                 f"GET /v1/pets/{pet['id']}/records")
    assert (await app.db.fetch_one("SELECT COUNT(*) FROM records WHERE pet_id = %s", (pet["id"],)))[0] == 0
    assert (await api.get(f"/v1/pets/{pet['id']}/records/{gone[0]['id']}", token=token)).status == 404
    assert (await api.get(f"/v1/pets/{kept['id']}/records", token=token)).body["data"] == [other]


@pytest.mark.parametrize("body, fields", [
    ({}, ["date", "kind"]),
    ({"kind": "surgery", "date": "2024-01-01"}, ["kind"]),
    ({"kind": "weight", "date": "01/02/2024"}, ["date"]),
    ({"kind": "weight", "date": "2024-02-30"}, ["date"]),
    ({"kind": "weight", "date": 20240101}, ["date"]),
    ({"kind": "weight", "date": "2024-01-01", "note": "n" * 2001}, ["note"]),
    ({"kind": "weight", "date": "2024-01-01", "value": "12.5"}, ["value"]),
    ({"kind": "weight", "date": "2024-01-01", "value": True}, ["value"]),
    ({"kind": "weight", "date": "2024-01-01", "value": 1e13}, ["value"]),
    ({"kind": "weight", "date": "2024-01-01", "pet_id": 1}, ["pet_id"]),
    ({"kind": "weight", "date": "2024-01-01", "id": 1, "weight": 3}, ["id", "weight"]),
])
@pytest.mark.gen_test
async def test_invalid_records_name_every_field(api, app, body, fields):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    response = await api.post(f"/v1/pets/{pet['id']}/records", token=token, json=body)
    assert_error(response, 400, 1001, f"POST /v1/pets/{pet['id']}/records")
    assert sorted(e["field"] for e in response.body["errors"]) == fields
    assert (await api.get(f"/v1/pets/{pet['id']}/records", token=token)).body["page"]["total"] == 0


@pytest.mark.parametrize("query, field", [("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"),
                                          ("kind=surgery", "kind"), ("limit=ten", "limit")])
@pytest.mark.gen_test
async def test_bad_list_parameters_are_named(api, app, query, field):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    response = await api.get(f"/v1/pets/{pet['id']}/records?{query}", token=token)
    assert_error(response, 400, 1001, f"GET /v1/pets/{pet['id']}/records")
    assert [e["field"] for e in response.body["errors"]] == [field]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_records_of_another_users_pet_are_not_found(api, app):
    _, alice = await user_with_token(app)
    _, bob = await user_with_token(app)
    pet = await create_pet(api, alice)
    record = await add_record(api, alice, pet["id"], note="private")
    bobs_pet = await create_pet(api, bob, name="Bob's")
    base = f"/v1/pets/{pet['id']}/records"
    attempts = [("GET", base, None), ("POST", base, {"kind": "weight", "date": "2024-01-01"}),
                ("GET", f"{base}/{record['id']}", None), ("DELETE", f"{base}/{record['id']}", None),
                # the record exists, but not under this pet
                ("GET", f"/v1/pets/{bobs_pet['id']}/records/{record['id']}", None),
                ("DELETE", f"/v1/pets/{bobs_pet['id']}/records/{record['id']}", None)]
    for method, path, json in attempts:
        response = await api.request(method, path, token=bob, json=json)
        assert_error(response, 404, 1002, f"{method} {path}")
        assert b"private" not in response.raw
    missing = await api.get(f"/v1/pets/{pet['id'] + 1000}/records", token=bob)
    assert {**missing.body, "request": ""} == {**(await api.get(base, token=bob)).body, "request": ""}
    assert (await api.get(base, token=alice)).body["data"] == [record]  # nothing was added or removed

    _, admin = await user_with_token(app, role="admin")
    assert (await api.get(base, token=admin)).body["data"] == [record]
    assert (await api.get(f"{base}/{record['id']}", token=admin)).body["data"] == record
    by_admin = await api.post(base, token=admin, json={"kind": "vaccination", "date": "2024-02-02"})
    assert by_admin.status == 201 and by_admin.body["data"]["pet_id"] == pet["id"]


@pytest.mark.gen_test
async def test_scopes_are_required(api, app):
    user, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    read_only = app.tokens.issue(user.id, ["pets:read"]).token
    base = f"/v1/pets/{pet['id']}/records"
    assert_error(await api.post(base, token=read_only, json={"kind": "weight", "date": "2024-01-01"}), 403, 1004,
                 f"POST {base}")
    assert_error(await api.delete(f"{base}/{record['id']}", token=read_only), 403, 1004,
                 f"DELETE {base}/{record['id']}")
    assert (await api.get(f"{base}/{record['id']}", token=read_only)).status == 200
    assert_error(await api.get(base), 401, 1003, f"GET {base}")


@pytest.mark.parametrize("config_overrides", [{"plugins": ["core", "accounts", "pets"]}])
@pytest.mark.gen_test
async def test_without_the_records_plugin_its_routes_and_document_part_are_gone(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    for method, path in (("GET", f"/v1/pets/{pet['id']}/records"), ("POST", f"/v1/pets/{pet['id']}/records"),
                         ("GET", f"/v1/pets/{pet['id']}/records/1")):
        response = await api.request(method, path, token=token, json={} if method == "POST" else None)
        assert response.body == {"error_code": 1007, "message": "no such route", "request": f"{method} {path}"}
        assert response.status == 404
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).status == 200
    document = await api.get("/v1/openapi.json")
    assert document.status == 200
    assert "/v1/pets/{pet_id}" in document.body["paths"]
    assert not [p for p in document.body["paths"] if "records" in p]
    assert not [name for name in document.body["components"]["schemas"] if name.startswith("Record")]
    assert "records" not in {t["name"] for t in document.body["tags"]}
    paths = orjson.dumps(document.body["paths"])
    assert b"/records" not in paths and b"_records" not in paths and b"#/components/schemas/Record" not in paths


@both_backends
@pytest.mark.gen_test
async def test_record_dates_lie_between_1900_and_ten_years_ahead(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/records"
    today = dt.datetime.now(dt.UTC).date()
    latest = today.replace(year=today.year + 10, day=28 if (today.month, today.day) == (2, 29) else today.day)
    for field, value, message in (("date", "1899-12-31", "must not be before 1900-01-01"),
                                  ("date", "0202-02-02", "must not be before 1900-01-01"),
                                  ("date", (latest + dt.timedelta(days=1)).isoformat(),
                                   "must not be more than 10 years after today"),
                                  ("due_date", "2202-02-02", "must not be more than 10 years after today"),
                                  ("due_date", "1000-01-01", "must not be before 1900-01-01")):
        body = {"kind": "vaccination", "date": "2024-05-01", field: value}
        refused = await api.post(path, json=body, token=token)
        assert_error(refused, 400, 1001, f"POST {path}")
        assert refused.body["errors"] == [{"field": field, "message": message}], value
    zh = await api.post(path, json={"kind": "vaccination", "date": "1850-01-01"}, token=token,
                        headers={"Accept-Language": "zh-CN"})
    assert zh.body["errors"] == [{"field": "date", "message": "不能早于 1900-01-01"}]
    created = await api.post(path, json={"kind": "vaccination", "date": "1900-01-01", "due_date": latest.isoformat()},
                             token=token)
    assert (created.status, created.body["data"]["date"], created.body["data"]["due_date"]) == (
        201, "1900-01-01", latest.isoformat())
    patched = await api.patch(f"{path}/{created.body['data']['id']}", json={"due_date": "3000-01-01"}, token=token,
                              headers={"If-Match": "*"})
    assert_error(patched, 400, 1001, f"PATCH {path}/{created.body['data']['id']}")
    assert patched.body["errors"] == [{"field": "due_date", "message": "must not be more than 10 years after today"}]
    document = (await api.get("/v1/openapi.json")).body
    described = document["components"]["schemas"]["RecordCreate"]["properties"]
    assert "from 1900-01-01 to 10 years after today" in described["date"]["description"]
    assert "from 1900-01-01 to 10 years after today" in described["due_date"]["description"]
    pattern = described["date"]["pattern"]  # the lower bound in the document too, for generators and clients
    assert [bool(re.fullmatch(pattern, d)) for d in ("1899-12-31", "0202-02-02", "1900-01-01", "2024-05-01")] == [
        False, False, True, True]
    assert described["due_date"]["anyOf"][0]["pattern"] == pattern
