"""GET /v1/openapi.json: a valid OpenAPI 3.1 document of exactly the mounted routes, and true to the responses.

Rule: the document covers every route of `python main.py routes` except /metrics (Prometheus' text format
for operators, outside the JSON API). The document and docs page routes are in it too.
"""

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from jsonschema.validators import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.factories import assert_error, both_backends, create_pet, create_user, token_for, user_with_token
from tests.plugins.photos.images import png_with_transparency
from tests.processes import ROOT

NOT_DOCUMENTED = {"/metrics"}
METHODS = ("get", "post", "put", "patch", "delete")
# Every keyword the document may use in a schema: anything else (e.g. pydantic's "ge") would be ignored
# by clients and schemathesis alike.
SCHEMA_KEYWORDS = {
    "type", "properties", "required", "items", "enum", "const", "anyOf", "allOf", "oneOf", "not", "if", "then",
    "additionalProperties", "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "minProperties",
    "default", "title", "description", "examples", "$ref",
}


async def fetch_document(api: Any) -> dict[str, Any]:
    response = await api.get("/v1/openapi.json")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    return response.body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()
            if method in METHODS]


def cli_routes() -> list[tuple[str, str, str]]:
    """(METHOD, path, scopes) rows of `python main.py routes --env=test`."""
    out = subprocess.run([sys.executable, "main.py", "routes", "--env=test"], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    routes = out.split("\n\n")[0]  # the scope table follows a blank line
    rows = [line.split() for line in routes.splitlines()[1:] if line.strip()]
    return [(row[0], row[1], " ".join(row[3:])) for row in rows]


@pytest.mark.gen_test
async def test_the_document_is_valid_openapi_3_1(api):
    document = await fetch_document(api)
    assert document["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(document).validate()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert scheme["x-scopes"] == {  # every scope the enabled plugins declare, with its description
        "pets:admin": "read and change every user's pets",
        "pets:read": "read one's own pets (and their records)",
        "pets:write": "create, change and delete one's own pets (and their records)",
        "users:admin": "list, read and change every account",
        "users:me": "read and change one's own account"}
    assert "`pets:admin`: read and change every user's pets" in scheme["description"]


@pytest.mark.gen_test(timeout=60)
async def test_the_document_lists_every_route_of_the_cli_with_its_scopes(api):
    document = await fetch_document(api)
    routes = cli_routes()
    assert ("GET", "/metrics", "-") in routes
    expected = {(method.lower(), path): scopes for method, path, scopes in routes if path not in NOT_DOCUMENTED}
    documented = {(method, path): op for path, method, op in operations(document)}
    assert set(documented) == set(expected)
    for key, scopes in expected.items():
        op = documented[key]
        if scopes == "-":  # no token needed, and the document says so (security: [])
            assert op["security"] == [] and "x-required-scopes" not in op, key
            continue
        required = [] if scopes == "(any token)" else scopes.split()
        assert op["security"] == [{"bearerAuth": []}], key
        assert op["x-required-scopes"] == required, key
    assert documented[("post", "/v1/users")]["security"] == []  # register and log in need no token
    assert documented[("post", "/v1/tokens")]["security"] == []
    assert documented[("get", "/v1/tokens/current")]["security"] == [{"bearerAuth": []}]


def test_the_readme_and_the_plugin_guide_say_where_an_operation_names_its_scopes():
    for doc in (ROOT / "README.md", ROOT / "docs" / "plugins.md"):  # x-required-scopes, asserted above
        text = " ".join(doc.read_text().split())
        assert "each operation's `x-required-scopes` and description; its `security` names only `bearerAuth`" in text


@pytest.mark.gen_test
async def test_each_operation_describes_parameters_body_success_and_errors(api):
    document = await fetch_document(api)
    components = document["components"]["schemas"]
    for path, method, op in operations(document):
        where = f"{method.upper()} {path}"
        assert re.fullmatch(r"[a-z]+_[A-Za-z0-9_]+", op["operationId"]), where
        path_params = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert path_params == set(re.findall(r"\{(\w+)\}", path)), where
        statuses = {int(s) for s in op["responses"]}
        success = sorted(s for s in statuses if s < 300)
        assert len(success) == 1 or (success == [200, 201] and method == "put"), where  # PUT: replaced or created
        if 304 in statuses:  # a cached answer: If-None-Match with its ETag, 304 with no body
            assert "content" not in op["responses"]["304"], where
            assert "If-None-Match" in {p["name"] for p in op["parameters"] if p["in"] == "header"}, where
            assert "ETag" in op["responses"][str(success[0])]["headers"], where
        for status in statuses - set(success) - {304}:
            schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/Error{status}"}, where
            codes = components[f"Error{status}"]["allOf"][1]["properties"]["error_code"]["enum"]
            assert codes and all(isinstance(c, int) for c in codes), where
        if op["security"]:
            assert {401, 403} <= statuses, where
        if path_params:
            assert 404 in statuses, where
        if method in ("post", "patch") and "requestBody" in op:
            assert {400, 413, 415} <= statuses, where
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert components[body["$ref"].rsplit("/", 1)[1]]["additionalProperties"] is False, where
        content = op["responses"][str(success[0])]["content"]
        if "application/json" in content and path != "/v1/openapi.json":
            envelope = content["application/json"]["schema"]
            assert envelope["required"][:3] == ["code", "data", "message"], where
            assert envelope["properties"]["code"] == {"type": "integer", "const": success[0]}, where
    assert {"application/json"} == set(document["paths"]["/v1/pets"]["post"]["requestBody"]["content"])
    cached = {(m, p) for p, m, op in operations(document) if "304" in op["responses"]}
    mounted = {(m, p) for p, m, _ in operations(document)}
    assert cached == mounted & {  # of those the profile mounts
        ("get", "/v1/pets"), ("get", "/v1/pets/{pet_id}"), ("get", "/v1/pets/{pet_id}/records"),
        ("get", "/v1/pets/{pet_id}/records/{record_id}"), ("get", "/v1/users"), ("get", "/v1/pets/{pet_id}/photo"),
        ("get", "/v1/reminders"), ("get", "/v1/invitations"), ("get", "/v1/pets/{pet_id}/invitations"),
        ("get", "/v1/pets/{pet_id}/members"), ("get", "/v1/pets/{pet_id}/history"),
        ("get", "/v1/calendar/{token}.ics"), ("get", "/v1/docs"), ("get", "/v1/docs/docs.js"),
        ("get", "/v1/docs/swagger-ui-bundle.js"), ("get", "/v1/docs/swagger-ui.css"),
        ("get", "/v1/pets/{pet_id}/weight.svg")}
    assert ("get", "/v1/pets") in cached


@pytest.mark.gen_test
async def test_the_calendar_feed_documents_its_304_and_the_event_stream_its_503_while_draining(api):
    """Both raw (non-JSON) answers, so only what they declare is listed: the feed answers a current
    If-None-Match with 304 (tests/plugins/reminders/test_calendar.py), the stream 503 once the drain began
    (tests/plugins/sync/test_events.py)."""
    document = await fetch_document(api)
    calendar = document["paths"]["/v1/calendar/{token}.ics"]["get"]
    assert sorted(calendar["responses"]) == ["200", "304", "400", "404", "503"]
    assert "content" not in calendar["responses"]["304"]
    assert "If-None-Match" in {p["name"] for p in calendar["parameters"]}
    assert set(calendar["responses"]["200"]["headers"]) == {"ETag", "Cache-Control"}
    events = document["paths"]["/v1/events"]["get"]["responses"]
    assert events["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error503"}
    assert sorted(events) == ["200", "400", "401", "403", "410", "503"]


@pytest.mark.gen_test(timeout=60)
async def test_the_event_stream_declares_last_event_id_as_the_server_reads_it(api, app):
    """Last-Event-ID is a header parameter of GET /v1/events (its errors name it as a field): a cursor and an empty
    value start the stream (HEAD: its head only), a forged or over-long one is 400/1001 naming it."""
    document = await fetch_document(api)
    events = document["paths"]["/v1/events"]["get"]
    headers = [p for p in events["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"], p["schema"]) for p in headers] == [
        ("Last-Event-ID", False, {"type": "string", "maxLength": 512})]
    assert "starts after that event" in headers[0]["description"]
    assert "400/1001" in headers[0]["description"] and "410/1012" in headers[0]["description"]
    assert [p["name"] for p in events["parameters"] if p["in"] == "query"] == ["cursor"]

    _, token = await user_with_token(app)
    await create_pet(api, token)
    cursor = (await api.get("/v1/sync", token=token)).body["data"]["cursor"]
    for valid in (cursor, ""):
        started = await api.request("HEAD", "/v1/events", token=token, headers={"Last-Event-ID": valid})
        assert (started.status, started.raw) == (200, b""), valid
        assert started.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    for invalid in ("forged", cursor + "x", "a" * 513):
        refused = await api.get("/v1/events", token=token, headers={"Last-Event-ID": invalid})
        assert_error(refused, 400, 1001, "GET /v1/events", "invalid cursor")
        assert refused.body["errors"] == [{"field": "Last-Event-ID", "message": "not a cursor of this API"}]


async def path_values(api: Any, app: Any, paths: Iterable[str]) -> tuple[dict[str, Any], str]:
    """A value for every path parameter the document's paths take, all naming things that exist (a pet with a record
    and a photo, an admin, a calendar feed: each only where its plugin is mounted), and a token that reads them."""
    admin, token = await user_with_token(app, role="admin")
    pet = await create_pet(api, token)
    values: dict[str, Any] = {"pet_id": pet["id"], "user_id": admin.id}
    paths = set(paths)
    if "/v1/pets/{pet_id}/records/{record_id}" in paths:
        record = await api.post(f"/v1/pets/{pet['id']}/records", token=token,
                                json={"kind": "weight", "date": "2024-01-01", "value": 3.5})
        assert record.status == 201, record.body
        values["record_id"] = record.body["data"]["id"]
    if "/v1/pets/{pet_id}/photo" in paths:
        photo = await api.request("PUT", f"/v1/pets/{pet['id']}/photo", token=token, body=png_with_transparency(),
                                  headers={"Content-Type": "image/png"})
        assert photo.status == 201, photo.body
    if "/v1/calendar/{token}.ics" in paths:
        feed = await api.post("/v1/users/me/calendar", token=token)
        assert feed.status == 201, feed.body
        values["token"] = feed.body["data"]["url"].rsplit("/", 1)[1].removesuffix(".ics")
    return values, token


@pytest.mark.gen_test(timeout=60)
async def test_a_get_answers_304_to_its_own_etag_exactly_where_the_document_declares_it(api, app):
    """Every GET, asked again with the ETag it answered as If-None-Match: 304 exactly where the document lists 304
    and If-None-Match (a generated client treats an undeclared 304 as an unexpected status). The event stream is
    left out: it never ends, and declares neither."""
    document = await fetch_document(api)
    values, token = await path_values(api, app, document["paths"])
    answering, declaring = set(), set()
    for path, method, op in operations(document):
        if method != "get" or "text/event-stream" in op["responses"]["200"]["content"]:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)
        first = await api.get(url, token=token)
        assert first.status == 200, (path, first.raw[:300])
        tag = first.headers.get("ETag")
        if tag is not None:
            again = await api.get(url, token=token, headers={"If-None-Match": tag})
            assert again.status in (200, 304), (path, again.status)
            if again.status == 304:
                assert again.raw == b"", path
                answering.add(path)
        if "304" in op["responses"]:
            assert "If-None-Match" in {p["name"] for p in op["parameters"] if p["in"] == "header"}, path
            declaring.add(path)
    assert answering == declaring
    assert {"/v1/pets", "/v1/docs", "/v1/docs/swagger-ui.css"} <= answering  # the check itself can fail


@pytest.mark.gen_test(timeout=60)
async def test_every_operation_lists_400_and_one_without_body_or_query_answers_it_to_an_unknown_parameter(api, app):
    """Any query parameter an operation does not take is refused (400/1001 naming it), so every operation lists
    400; those that take no body and no query used to leave it out. Each of them is asked here with ?zzz=1 by
    an admin (every scope), path ids 1 and a well-formed feed token: the parameter is refused before anything
    else is looked at."""
    document = await fetch_document(api)
    _, token = await user_with_token(app, role="admin")
    asked = []
    for path, method, op in operations(document):
        assert "400" in op["responses"], f"{method.upper()} {path}"
        if "requestBody" in op or any(p["in"] == "query" for p in op["parameters"]):
            continue
        shown = re.sub(r"\{\w+_id\}", "1", path)  # a feed token is a credential: shown as the template
        response = await api.request(method.upper(), shown.replace("{token}", "a" * 32) + "?zzz=1", token=token)
        assert_error(response, 400, 1001, f"{method.upper()} {shown}")
        assert response.body["errors"] == [{"field": "zzz", "message": response.body["errors"][0]["message"]}]
        asked.append((method, path))
    assert {("get", "/v1/users/me"), ("delete", "/v1/pets/{pet_id}"), ("get", "/v1/sessions"),
            ("get", "/v1/calendar/{token}.ics"), ("get", "/v1/openapi.json"), ("get", "/v1/health"),
            ("get", "/v1/errors"), ("get", "/v1/docs"), ("get", "/v1/docs/swagger-ui.css")} <= set(asked)
    assert len(asked) >= 29, asked


@pytest.mark.gen_test
async def test_pet_operations_in_detail(api):
    document = await fetch_document(api)
    paths = document["paths"]
    listing = paths["/v1/pets"]["get"]
    params = {p["name"]: p for p in listing["parameters"] if p["in"] == "query"}
    assert set(params) == {"species", "status", "q", "owner_id", "role", "sort", "limit", "offset", "cursor",
                           "include_total"}
    assert params["include_total"]["schema"] == {"type": "boolean"}
    assert params["include_total"]["description"].endswith("absent: true")  # said in words: see _defaults_in_words
    assert [p["name"] for p in listing["parameters"] if p["in"] == "header"] == ["If-None-Match"]
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert params["sort"]["schema"]["enum"] == ["id", "-id", "name", "-name", "created_at", "-created_at"]
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["required"] == ["code", "data", "message", "page"]
    assert page["properties"]["data"] == {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}

    created = paths["/v1/pets"]["post"]["responses"]["201"]
    assert set(created["headers"]) == {"Location", "ETag", "Idempotent-Replayed"}
    assert created["links"]["patch_v1_pets_pet_id"]["parameters"] == {
        "pet_id": "$response.body#/data/id", "header.If-Match": "$response.header.ETag"}
    targets = {op["operationId"] for _, _, op in operations(document)}
    links = [link for _, _, op in operations(document) for r in op["responses"].values()
             for link in r.get("links", {}).values()]
    assert links and all(link["operationId"] in targets for link in links)
    record_link = paths["/v1/pets/{pet_id}/records"]["post"]["responses"]["201"]["links"]
    assert record_link["get_v1_pets_pet_id_records_record_id"]["parameters"] == {
        "pet_id": "$request.path.pet_id", "record_id": "$response.body#/data/id"}

    patch = paths["/v1/pets/{pet_id}"]["patch"]
    assert "412" in patch["responses"] and "412" in paths["/v1/pets/{pet_id}"]["delete"]["responses"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in patch["parameters"])
    schemas = document["components"]["schemas"]
    assert schemas["PetUpdate"]["minProperties"] == 1
    assert schemas["PetCreate"]["required"] == ["name", "species"]
    assert set(schemas["PetCreate"]["properties"]) == {"name", "species", "breed", "sex", "birth_date", "status"}
    assert schemas["Pet"]["properties"]["species"]["enum"] == ["dog", "cat", "bird", "rabbit", "fish", "reptile",
                                                               "other"]
    assert schemas["Error400"]["allOf"][1] == {
        "properties": {"error_code": {"enum": [1001]}}}


@pytest.mark.gen_test
async def test_a_link_passes_the_created_etag_as_if_match_only_where_if_match_names_that_version(api, app):
    """The pet's "v1" goes to the pet's PATCH, DELETE and transfer; the photo's PUT and DELETE take the photo's own
    tag (a pet's tag there is 412 or 404), so their links give the pet_id only."""
    document = await fetch_document(api)
    links = document["paths"]["/v1/pets"]["post"]["responses"]["201"]["links"]
    with_tag = {name for name, link in links.items() if "header.If-Match" in link["parameters"]}
    assert with_tag == {"patch_v1_pets_pet_id", "delete_v1_pets_pet_id", "post_v1_pets_pet_id_transfer"}
    for name in ("put_v1_pets_pet_id_photo", "delete_v1_pets_pet_id_photo"):
        assert links[name]["parameters"] == {"pet_id": "$response.body#/data/id"}, name
    by_id = {op["operationId"]: op for _, _, op in operations(document)}
    for path, method, op in operations(document):
        for link in op["responses"].get("201", {}).get("links", {}).values():
            if "header.If-Match" in link["parameters"]:
                target = {p["name"]: p for p in by_id[link["operationId"]]["parameters"]}
                assert target["If-Match"]["description"].startswith("ETag of the version you last read"), (
                    method, path, link["operationId"])
    # Followed as the document says, the photo links make requests the server accepts.
    _, token = await user_with_token(app)
    created = await api.post("/v1/pets", token=token, json={"name": "Linky", "species": "cat"})
    assert created.status == 201 and created.headers["ETag"] == '"v1"', created.body
    pet_id = created.body["data"]["id"]
    put = await api.request("PUT", f"/v1/pets/{pet_id}/photo", token=token, body=png_with_transparency(),
                            headers={"Content-Type": "image/png"})
    assert put.status == 201 and put.body["data"]["content_type"] == "image/png", put.body
    deleted = await api.delete(f"/v1/pets/{pet_id}/photo", token=token)
    assert (deleted.status, deleted.body) == (200, {"code": 200, "data": None, "message": "ok"})
    stale = await api.request("PUT", f"/v1/pets/{pet_id}/photo", token=token, body=png_with_transparency(),
                              headers={"Content-Type": "image/png", "If-Match": created.headers["ETag"]})
    assert_error(stale, 412, 1009, f"PUT /v1/pets/{pet_id}/photo", "precondition failed")  # what the old link gave


@both_backends
@pytest.mark.gen_test
async def test_birth_date_says_not_in_the_future_in_words_and_the_server_refuses_a_later_day(api, app):
    document = await fetch_document(api)
    for model in ("PetCreate", "PetUpdate"):
        birth_date = document["components"]["schemas"][model]["properties"]["birth_date"]
        assert birth_date["description"].startswith("YYYY-MM-DD, not after today (UTC)"), model
        assert "pattern" not in orjson.dumps(birth_date).decode(), model  # no date in the document
    _, token = await user_with_token(app)
    today = dt.datetime.now(dt.UTC).date()
    for day, admitted in [(today, True), (dt.date(1, 1, 1), True), (today + dt.timedelta(days=2), False),
                          (dt.date(9999, 12, 31), False)]:
        created = await api.post("/v1/pets", token=token, json={"name": "Rex", "species": "dog",
                                                                 "birth_date": day.isoformat()})
        if admitted:
            assert created.status == 201 and created.body["data"]["birth_date"] == day.isoformat(), day
        else:
            assert_error(created, 400, 1001, "POST /v1/pets")
            assert created.body["errors"] == [{"field": "birth_date", "message": "must not be in the future"}]


@pytest.mark.gen_test
async def test_the_document_does_not_change_with_the_day_or_between_builds(app):
    from server.openapi import ApiDocument

    assert ApiDocument(app).json() == ApiDocument(app).json()
    assert dt.date.today().isoformat() not in ApiDocument(app).json().decode()


@pytest.mark.gen_test
async def test_optional_request_fields_say_their_default_in_words_not_as_a_default(api):
    document = await fetch_document(api)
    schemas = document["components"]["schemas"]
    assert "default" not in orjson.dumps([schemas[name] for name in ("PetCreate", "RecordCreate", "MeUpdate")]
                                         ).decode()
    assert schemas["PetCreate"]["properties"]["sex"]["description"] == 'Absent: "unknown"'
    request_bodies = [op["requestBody"] for _, _, op in operations(document) if "requestBody" in op]
    parameters = [p for _, _, op in operations(document) for p in op["parameters"]]
    assert '"default"' not in orjson.dumps([request_bodies, parameters]).decode()
    limit = next(p for p in document["paths"]["/v1/pets"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert limit["description"].endswith("absent: 20") or limit["description"] == "Absent: 20"


def _schema_keywords(node: Any, found: set[str], *, in_properties: bool = False) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if not in_properties:
                found.add(key)
            _schema_keywords(value, found, in_properties=key == "properties" and not in_properties)
    elif isinstance(node, list):
        for value in node:
            _schema_keywords(value, found)


@pytest.mark.gen_test
async def test_schemas_use_only_json_schema_keywords(api):
    document = await fetch_document(api)
    found: set[str] = set()
    for schema in document["components"]["schemas"].values():
        _schema_keywords(schema, found)
    for _, _, op in operations(document):
        for param in op["parameters"]:
            _schema_keywords(param["schema"], found)
    assert found - SCHEMA_KEYWORDS == set()


def validator_for(document: dict[str, Any], path: str, method: str, status: int) -> Draft202012Validator:
    content = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
    schema = {**content["schema"], "components": document["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.gen_test(timeout=30)
async def test_real_responses_match_the_document(api, app):
    document = await fetch_document(api)
    user, token = await user_with_token(app)
    checks = []
    created = await api.post("/v1/pets", token=token, json={"name": "Rex", "species": "dog",
                                                            "birth_date": "2020-01-02"})
    pet = created.body["data"]
    checks.append(("/v1/pets", "post", created))
    checks.append(("/v1/pets", "get", await api.get("/v1/pets", token=token)))
    checks.append(("/v1/pets/{pet_id}", "get", await api.get(f"/v1/pets/{pet['id']}", token=token)))
    checks.append(("/v1/pets/{pet_id}", "patch", await api.patch(f"/v1/pets/{pet['id']}", token=token,
                                                                 json={"breed": "Pug"})))
    checks.append(("/v1/pets/{pet_id}", "patch", await api.patch(f"/v1/pets/{pet['id']}", token=token,
                                                                 json={"name": "x"}, headers={"If-Match": '"v1"'})))
    record = await api.post(f"/v1/pets/{pet['id']}/records", token=token,
                            json={"kind": "weight", "date": "2024-01-01", "value": 3.5})
    checks.append(("/v1/pets/{pet_id}/records", "post", record))
    checks.append(("/v1/pets/{pet_id}/records", "get", await api.get(f"/v1/pets/{pet['id']}/records", token=token)))
    checks.append(("/v1/pets", "get", await api.get("/v1/pets?limit=0", token=token)))
    checks.append(("/v1/pets", "post", await api.post("/v1/pets", token=token_for(app, user.id, ["pets:read"]),
                                                      json={"name": "Rex", "species": "dog"})))
    checks.append(("/v1/pets/{pet_id}", "get", await api.get("/v1/pets/99999999", token=token)))
    checks.append(("/v1/pets/{pet_id}", "delete", await api.delete(f"/v1/pets/{pet['id']}", token=token)))
    checks.append(("/v1/pets", "get", await api.get("/v1/pets")))
    assert [r.status for _, _, r in checks] == [201, 200, 200, 200, 412, 201, 200, 400, 403, 404, 200, 401]
    for path, method, response in checks:
        errors = list(validator_for(document, path, method, response.status).iter_errors(response.body))
        assert errors == [], (path, method, response.status, response.body, errors)
    broken = {**pet, "species": "dragon"}
    assert list(validator_for(document, "/v1/pets/{pet_id}", "get", 200).iter_errors(
        {"code": 200, "data": broken, "message": "ok"}))  # the check itself can fail


@pytest.mark.gen_test
async def test_each_documented_error_status_lists_the_codes_the_catalog_gives_that_status(api):
    document = await fetch_document(api)
    catalog = (await api.get("/v1/errors")).body["data"]
    by_status: dict[int, list[int]] = {}
    for entry in catalog:  # 1007: under each status it comes with
        for status in entry.get("http_statuses") or [entry["http_status"]]:
            by_status.setdefault(status, []).append(entry["error_code"])
    documented = {int(name.removeprefix("Error")): schema["allOf"][1]["properties"]["error_code"]["enum"]
                  for name, schema in document["components"]["schemas"].items() if re.fullmatch(r"Error\d+", name)}
    assert {400, 401, 403, 404, 409, 412, 413, 415, 429, 503} <= set(documented)
    for status, codes in documented.items():
        assert codes == by_status.get(status, [1007]), status  # 1007 carries any status no class has
    assert documented[401] == [1003, 10031, 10032, 10033, 10034]
    assert documented[404] == [1002, 1007]


@pytest.mark.gen_test
async def test_a_409_names_idempotency_key_only_where_the_operation_takes_one(api):
    # Every 409 said "1010: a request with the same Idempotency-Key is still running", also on the administrators'
    # and the households' routes, which take no such header.
    document = await fetch_document(api)
    seen = {True: 0, False: 0}
    for path, item in document["paths"].items():
        for method, op in item.items():
            if "409" not in op["responses"]:
                continue
            text = op["responses"]["409"]["description"]
            keyed = any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
            seen[keyed] += 1
            assert ("Idempotency-Key" in text) == ("1010" in text) == keyed, (method, path, text)
    assert seen[True] >= 3 and seen[False] >= 10, seen  # POST users, pets, records; admin and households routes
    admin_patch = document["paths"]["/v1/users/{user_id}"]["patch"]["responses"]["409"]["description"]
    assert admin_patch == "Conflict with the current state of what the request names; `error_code` says which " \
                          "(GET /v1/errors)"


def request_body_validator(document: dict[str, Any], op: dict[str, Any]) -> Draft202012Validator:
    schema = {**op["requestBody"]["content"]["application/json"]["schema"], "components": document["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.gen_test(timeout=30)
async def test_every_patch_refuses_what_its_document_refuses(api, app):
    """{} to every PATCH of the served document, then each body field alone as null: the document's schema
    admits the body exactly when the server changes something, and a refusal is 400 with a documented code
    (so {"role": null}, which changes nothing, is refused by both)."""
    document = await fetch_document(api)
    scopes = sorted({s for _, _, op in operations(document) for s in op.get("x-required-scopes", [])})
    caller = await create_user(app, role="admin")
    token = token_for(app, caller.id, scopes)
    ids = {"pet_id": (await create_pet(api, token))["id"], "user_id": (await create_user(app)).id}
    record = await api.post(f"/v1/pets/{ids['pet_id']}/records", json={"kind": "weight", "date": "2024-01-01"},
                            token=token)
    ids["record_id"] = record.body["data"]["id"]
    patches = [(path, op) for path, method, op in operations(document) if method == "patch"]
    assert {path for path, _ in patches} == {"/v1/pets/{pet_id}", "/v1/users/me", "/v1/users/{user_id}",
                                             "/v1/pets/{pet_id}/members/{user_id}",
                                             "/v1/pets/{pet_id}/records/{record_id}"}
    for path, op in patches:
        url = re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
        validator = request_body_validator(document, op)
        fields = document["components"]["schemas"][op["requestBody"]["content"]["application/json"]["schema"][
            "$ref"].rsplit("/", 1)[1]]["properties"]
        codes = document["components"]["schemas"]["Error400"]["allOf"][1]["properties"]["error_code"]["enum"]
        empty = await api.patch(url, json={}, token=token)
        assert not validator.is_valid({}), path
        assert (empty.status, empty.body) == (400, {
            "error_code": 1001, "message": "invalid parameter", "request": f"PATCH {url}",
            "errors": [{"field": "body", "message": "nothing to change"}]}), path
        assert empty.body["error_code"] in codes and "400" in op["responses"], path
        for name in fields:
            response = await api.patch(url, json={name: None}, token=token)
            admitted = validator.is_valid({name: None})
            assert response.status == (200 if admitted else 400), (path, name, response.body)
            if not admitted:
                assert response.body["error_code"] in codes, (path, name, response.body)
    admin_patch = document["paths"]["/v1/users/{user_id}"]["patch"]
    assert not request_body_validator(document, admin_patch).is_valid({"role": None})
    assert request_body_validator(document, admin_patch).is_valid({"role": None, "disabled": True})


@pytest.mark.parametrize("config_overrides", [{"plugins": ["core", "accounts", "pets", "records"]}])
@pytest.mark.gen_test
async def test_the_document_is_built_once_per_day_and_served_as_is(api, app):
    first = await api.get("/v1/openapi.json")
    second = await api.get("/v1/openapi.json")
    assert first.raw == second.raw
    assert "/metrics" not in first.body["paths"]
    assert [t["name"] for t in first.body["tags"]] == ["core", "accounts", "pets", "records"]


@pytest.mark.gen_test
async def test_every_id_is_declared_int64(api):
    document = await fetch_document(api)
    ids: list[tuple[str, dict[str, Any]]] = []

    def collect(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if name == "id" or name.endswith("_id"):
                    ids.append((f"{where}.{name}", prop))
            for key, value in node.items():
                collect(value, f"{where}/{key}")
        elif isinstance(node, list):
            for item in node:
                collect(item, where)

    collect(document, "")
    for path, method, op in operations(document):
        ids += [(f"{method} {path} {p['name']}", p["schema"]) for p in op.get("parameters", [])
                if p["name"] == "id" or p["name"].endswith("_id")]
    assert len(ids) > 20
    for where, schema in ids:
        integers = [s for s in [schema, *schema.get("anyOf", [])] if s.get("type") == "integer"]
        assert integers and all(s.get("format") == "int64" for s in integers), (where, schema)


@pytest.mark.gen_test
async def test_the_document_names_the_license_the_project_ships(api):
    document = await fetch_document(api)
    license_text = (ROOT / "LICENSE").read_text()
    assert document["info"]["license"] == {"name": "MIT", "identifier": "MIT"}
    assert license_text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in license_text
    assert 'license = {text = "MIT"}' in (ROOT / "pyproject.toml").read_text()
