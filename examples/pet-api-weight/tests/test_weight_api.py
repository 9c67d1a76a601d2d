"""The weight routes over HTTP, on MariaDB and SQLite: series and statistics, target, chart, ownership, errors."""

import hashlib
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pet_api_weight.chart import EMPTY_MESSAGE, LINE_COLOR

from tests.factories import assert_error, both_backends, create_pet, token_for, user_with_token
from tests.plugins.records.test_handlers import add_record  # a weight record by default

SVG = "{http://www.w3.org/2000/svg}"
EMPTY_STATS = {"count": 0, "first": None, "last": None, "min": None, "max": None, "mean": None, "change": None}


async def weighed_pet(api: Any, token: str, weights: list[tuple[str, float]]) -> tuple[dict[str, Any], list[int]]:
    pet = await create_pet(api, token)
    ids = [(await add_record(api, token, pet["id"], date=day, value=value))["id"] for day, value in weights]
    return pet, ids


def polyline(svg: bytes) -> list[tuple[float, float]]:
    root = ET.fromstring(svg)
    lines = list(root.iter(f"{SVG}polyline"))
    if not lines:
        return []
    [line] = lines
    assert line.get("stroke") == LINE_COLOR
    return [tuple(map(float, pair.split(","))) for pair in line.get("points", "").split()]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_the_series_is_the_weight_records_in_date_order_with_statistics(api, app):
    _, token = await user_with_token(app)
    pet, ids = await weighed_pet(api, token, [("2024-03-01", 12.4), ("2024-01-10", 11.0), ("2024-02-05", 11.8)])
    await add_record(api, token, pet["id"], date="2024-02-01")  # a weight record without a value: no point
    await add_record(api, token, pet["id"], kind="medication", date="2024-02-02", value=250)
    response = await api.get(f"/v1/pets/{pet['id']}/weight", token=token)
    assert response.status == 200, response.body
    assert response.body == {"code": 200, "message": "ok", "data": {
        "pet_id": pet["id"], "unit": "kg",
        "points": [{"record_id": ids[1], "date": "2024-01-10", "value": 11.0},
                   {"record_id": ids[2], "date": "2024-02-05", "value": 11.8},
                   {"record_id": ids[0], "date": "2024-03-01", "value": 12.4}],
        "stats": {"count": 3, "first": 11.0, "last": 12.4, "min": 11.0, "max": 12.4, "mean": 11.733333,
                  "change": 1.4},
        "target": None}}


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_pet_without_weights_has_an_empty_series_and_an_empty_chart(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token, name="Tiny")
    response = await api.get(f"/v1/pets/{pet['id']}/weight", token=token)
    assert response.body == {"code": 200, "message": "ok", "data": {
        "pet_id": pet["id"], "unit": "kg", "points": [], "stats": EMPTY_STATS, "target": None}}
    chart = await api.get(f"/v1/pets/{pet['id']}/weight.svg", token=token)
    assert chart.status == 200 and chart.headers["Content-Type"] == "image/svg+xml", chart.raw[:200]
    assert polyline(chart.raw) == []
    assert EMPTY_MESSAGE in [t.text for t in ET.fromstring(chart.raw).iter(f"{SVG}text")]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_the_chart_has_a_vertex_per_weight_and_revalidates_with_its_etag(api, app):
    _, token = await user_with_token(app)
    pet, _ = await weighed_pet(api, token, [("2024-01-01", 4.0), ("2024-01-08", 4.2), ("2024-01-20", 4.1)])
    path = f"/v1/pets/{pet['id']}/weight.svg"
    chart = await api.get(path, token=token)
    assert chart.status == 200, chart.body
    assert chart.headers["Content-Type"] == "image/svg+xml"
    assert chart.headers["X-Content-Type-Options"] == "nosniff"
    assert chart.headers["Content-Security-Policy"] == "default-src 'none'"
    assert len(polyline(chart.raw)) == 3
    assert chart.headers["ETag"] == f'"{hashlib.sha256(chart.raw).hexdigest()[:32]}"'
    again = await api.get(path, token=token, headers={"If-None-Match": chart.headers["ETag"]})
    assert (again.status, again.raw) == (304, b"")
    await add_record(api, token, pet["id"], date="2024-02-01", value=4.3)
    changed = await api.get(path, token=token, headers={"If-None-Match": chart.headers["ETag"]})
    assert changed.status == 200 and len(polyline(changed.raw)) == 4
    assert_error(await api.get(path), 401, 1003, f"GET {path}")
    assert_error(await api.get(f"/v1/pets/{pet['id']}/weightXsvg", token=token), 404, 1007,
                 f"GET /v1/pets/{pet['id']}/weightXsvg")


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_another_users_pet_is_not_found_exactly_as_by_the_pets_route(api, app):
    _, owner = await user_with_token(app)
    _, stranger = await user_with_token(app)
    pet, _ = await weighed_pet(api, owner, [("2024-01-01", 8.0)])
    as_pets = await api.get(f"/v1/pets/{pet['id']}", token=stranger)
    for path, method in [("/weight", "GET"), ("/weight.svg", "GET"), ("/weight/target", "GET"),
                         ("/weight/target", "PUT"), ("/weight/target", "DELETE")]:
        url = f"/v1/pets/{pet['id']}{path}"
        response = await api.request(method, url, token=stranger, json={"weight": 7.5} if method == "PUT" else None)
        assert_error(response, 404, 1002, f"{method} {url}", message=as_pets.body["message"])
    missing = f"/v1/pets/{pet['id'] + 1000}/weight"
    assert_error(await api.get(missing, token=owner), 404, 1002, f"GET {missing}")
    assert (await api.get(f"/v1/pets/{pet['id']}/weight", token=owner)).body["data"]["stats"]["count"] == 1


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_the_target_is_set_read_shown_and_removed(api, app):
    _, token = await user_with_token(app)
    pet, _ = await weighed_pet(api, token, [("2024-01-01", 30.0), ("2024-02-01", 31.0)])
    path = f"/v1/pets/{pet['id']}/weight/target"
    assert (await api.get(path, token=token)).body == {"code": 200, "data": None, "message": "ok"}
    first = await api.request("PUT", path, token=token, json={"weight": 28.5})
    assert first.status == 200, first.body
    assert (first.body["data"]["weight"], first.body["data"]["unit"]) == (28.5, "kg")
    second = await api.request("PUT", path, token=token, json={"weight": 29.25, "unit": "kg"})
    assert second.status == 200, second.body
    read = await api.get(path, token=token)
    assert read.body == {"code": 200, "message": "ok", "data": second.body["data"]}
    series = await api.get(f"/v1/pets/{pet['id']}/weight", token=token)
    assert series.body["data"]["target"] == second.body["data"]
    rows = await app.db.fetch_all("SELECT pet_id, weight, unit FROM weight_targets")
    assert [(r[0], float(r[1]), r[2]) for r in rows] == [(pet["id"], 29.25, "kg")]  # one row per pet
    chart = await api.get(f"/v1/pets/{pet['id']}/weight.svg", token=token)
    assert "target 29.25 kg" in [t.text for t in ET.fromstring(chart.raw).iter(f"{SVG}text")]
    removed = await api.delete(path, token=token)
    assert removed.body == {"code": 200, "data": None, "message": "ok"}
    assert (await api.delete(path, token=token)).body == removed.body  # idempotent
    assert (await api.get(path, token=token)).body["data"] is None
    assert (await api.get(f"/v1/pets/{pet['id']}/weight", token=token)).body["data"]["target"] is None


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_target_goes_with_its_pet(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    target = await api.request("PUT", f"/v1/pets/{pet['id']}/weight/target", token=token, json={"weight": 5})
    assert target.status == 200, target.body
    assert (await api.delete(f"/v1/pets/{pet['id']}", token=token)).status == 200
    assert await app.db.fetch_all("SELECT pet_id FROM weight_targets WHERE pet_id = %s", (pet["id"],)) == []


@pytest.mark.parametrize("body, field, message", [
    ({"weight": 0}, "weight", "Input should be greater than or equal to 0.01"),
    ({"weight": -3.5}, "weight", "Input should be greater than or equal to 0.01"),
    ({"weight": "12"}, "weight", "Input should be a valid number"),
    ({"weight": 10_001}, "weight", "Input should be less than or equal to 10000"),
    ({"weight": 12, "unit": "stone"}, "unit", "Input should be 'kg' or 'lb'"),
    ({}, "weight", "Field required"),
    ({"weight": 12, "pet_id": 3}, "pet_id", "read-only field"),
])
@pytest.mark.gen_test(timeout=30)
async def test_an_invalid_target_is_refused_naming_the_field(api, app, body, field, message):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/weight/target"
    response = await api.request("PUT", path, token=token, json=body)
    assert_error(response, 400, 1001, f"PUT {path}")
    assert response.body["errors"] == [{"field": field, "message": message}]
    assert (await api.get(path, token=token)).body["data"] is None  # nothing was written


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_target_in_another_unit_is_refused_with_the_plugins_own_code(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/weight/target"
    response = await api.request("PUT", path, token=token, json={"weight": 20, "unit": "lb"})
    assert_error(response, 409, 2101, f"PUT {path}", message="unit: this server records weights in kg, not lb")
    assert response.body["errors"] == [{"field": "unit", "message": "must be kg"}]
    chinese = await api.request("PUT", path, token=token, json={"weight": 20, "unit": "lb"},
                                headers={"Accept-Language": "zh-CN"})
    assert_error(chinese, 409, 2101, f"PUT {path}", message="体重单位不一致")
    assert (await api.get(path, token=token)).body["data"] is None


@pytest.mark.gen_test(timeout=30)
async def test_scopes_are_the_pets_ones(api, app):
    user, _ = await user_with_token(app)
    reader = token_for(app, user.id, ["pets:read"])
    pet_token = token_for(app, user.id, ["pets:read", "pets:write"])
    pet = await create_pet(api, pet_token)
    path = f"/v1/pets/{pet['id']}/weight/target"
    assert (await api.get(f"/v1/pets/{pet['id']}/weight", token=reader)).status == 200
    assert (await api.get(f"/v1/pets/{pet['id']}/weight.svg", token=reader)).status == 200
    assert_error(await api.request("PUT", path, token=reader, json={"weight": 3}), 403, 1004, f"PUT {path}",
                 message="missing scope: pets:write")
    nothing = token_for(app, user.id, ["users:me"])
    assert_error(await api.get(f"/v1/pets/{pet['id']}/weight", token=nothing), 403, 1004,
                 f"GET /v1/pets/{pet['id']}/weight", message="missing scope: pets:read")


@pytest.mark.gen_test(timeout=30)
async def test_its_code_routes_and_scopes_are_in_the_catalog_and_the_document(api):
    catalog = await api.get("/v1/errors")
    assert {"error_code": 2101, "http_status": 409, "message": "weight unit mismatch"} in catalog.body["data"]
    chinese = await api.get("/v1/errors", headers={"Accept-Language": "zh"})
    assert {"error_code": 2101, "http_status": 409, "message": "体重单位不一致"} in chinese.body["data"]
    document = (await api.get("/v1/openapi.json")).body
    paths = document["paths"]
    assert set(paths["/v1/pets/{pet_id}/weight"]) == {"get"}
    assert set(paths["/v1/pets/{pet_id}/weight/target"]) == {"get", "put", "delete"}
    chart = paths["/v1/pets/{pet_id}/weight.svg"]["get"]
    assert list(chart["responses"]["200"]["content"]) == ["image/svg+xml"]
    assert chart["x-required-scopes"] == ["pets:read"] and chart["tags"] == ["weight"]
    assert "If-None-Match" in [p["name"] for p in chart["parameters"]] and "304" in chart["responses"]  # as served
    put = paths["/v1/pets/{pet_id}/weight/target"]["put"]
    assert put["x-required-scopes"] == ["pets:write"]
    assert put["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error409"}
    assert document["components"]["schemas"]["Error409"]["allOf"][1] == {
        "properties": {"error_code": {"enum": [1005, 1010, 2101]}}}
