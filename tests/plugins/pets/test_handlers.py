"""Pets over HTTP: owner-scoped CRUD, validation, filters, sorting, pagination and If-Match concurrency."""

import asyncio
import datetime as dt
import re
import urllib.parse
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.factories import Api, assert_error, both_backends, create_pet, token_for, user_with_token

PET_FIELDS = {"id", "owner_id", "name", "species", "breed", "sex", "birth_date", "status", "created_at",
              "updated_at", "version", "role", "photo"}
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"


def failing_fields(response: Any) -> list[str]:
    assert response.status == 400, response.body
    assert response.body["error_code"] == 1001
    return sorted(e["field"] for e in response.body["errors"])


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_create_read_list_patch_delete(api, app):
    user, token = await user_with_token(app)
    created = await api.post("/v1/pets", token=token, json={
        "name": "  Rex ", "species": "dog", "breed": "Beagle", "sex": "male", "birth_date": "2020-02-29"})
    assert created.status == 201, created.body
    pet = created.body["data"]
    assert set(pet) == PET_FIELDS
    assert (pet["owner_id"], pet["name"], pet["species"], pet["breed"], pet["sex"], pet["birth_date"],
            pet["status"], pet["version"], pet["role"]) == (
        user.id, "Rex", "dog", "Beagle", "male", "2020-02-29", "available", 1, "owner")
    assert re.fullmatch(TIMESTAMP, pet["created_at"]) and pet["updated_at"] == pet["created_at"]
    assert created.headers["Location"] == f"/v1/pets/{pet['id']}"
    assert created.headers["ETag"] == '"v1"'
    assert created.body["code"] == 201 and created.body["message"] == "ok"

    read = await api.get(created.headers["Location"], token=token)
    assert read.status == 200
    assert read.body == {"code": 200, "data": pet, "message": "ok"}
    assert read.headers["ETag"] == '"v1"'

    listed = await api.get("/v1/pets", token=token)
    assert listed.status == 200
    assert listed.body == {"code": 200, "data": [pet], "message": "ok",
                           "page": {"limit": 20, "offset": 0, "total": 1, "next_cursor": None}}

    patched = await api.patch(f"/v1/pets/{pet['id']}", token=token, json={"status": "adopted", "breed": None})
    assert patched.status == 200, patched.body
    assert patched.body["data"] == {**pet, "status": "adopted", "breed": None, "version": 2,
                                    "updated_at": patched.body["data"]["updated_at"]}
    assert patched.body["data"]["updated_at"] >= pet["updated_at"]
    assert patched.headers["ETag"] == '"v2"'
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"] == patched.body["data"]

    deleted = await api.delete(f"/v1/pets/{pet['id']}", token=token)
    assert deleted.status == 200
    assert deleted.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.get(f"/v1/pets/{pet['id']}", token=token), 404, 1002, f"GET /v1/pets/{pet['id']}")
    assert_error(await api.delete(f"/v1/pets/{pet['id']}", token=token), 404, 1002, f"DELETE /v1/pets/{pet['id']}")
    empty = await api.get("/v1/pets", token=token)
    assert empty.body == {"code": 200, "data": [], "message": "ok",
                          "page": {"limit": 20, "offset": 0, "total": 0, "next_cursor": None}}


@pytest.mark.gen_test
async def test_defaults_and_trimming(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token, name=" Mia\u00a0\u200b", species="cat", breed="\u3000 \ufeff")
    assert (pet["name"], pet["breed"], pet["sex"], pet["birth_date"], pet["status"]) == (
        "Mia", None, "unknown", None, "available")
    longest = await create_pet(api, token, name="x" * 64, breed="b" * 64)
    assert (longest["name"], longest["breed"]) == ("x" * 64, "b" * 64)


@pytest.mark.parametrize("field, value, message", [
    ("owner_id", 1, "read-only field"), ("id", 5, "read-only field"), ("version", 9, "read-only field"),
    ("created_at", "2020-01-01T00:00:00Z", "read-only field"), ("updated_at", "2020-01-01T00:00:00Z",
                                                                "read-only field"),
    ("color", "brown", "unknown field"), ("is_admin", True, "unknown field"),
])
@pytest.mark.gen_test
async def test_server_owned_and_unknown_fields_are_refused(api, app, field, value, message):
    _, token = await user_with_token(app)
    created = await api.post("/v1/pets", token=token, json={"name": "Rex", "species": "dog", field: value})
    assert_error(created, 400, 1001, "POST /v1/pets")
    assert created.body["errors"] == [{"field": field, "message": message}]
    pet = await create_pet(api, token)
    patched = await api.patch(f"/v1/pets/{pet['id']}", token=token, json={"name": "Max", field: value})
    assert patched.body["errors"] == [{"field": field, "message": message}]
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"] == pet  # nothing written
    assert (await api.get("/v1/pets", token=token)).body["page"]["total"] == 1


@pytest.mark.gen_test
async def test_every_failing_field_is_listed(api, app):
    _, token = await user_with_token(app)
    response = await api.post("/v1/pets", token=token, json={
        "name": "", "species": "dragon", "breed": "b" * 65, "sex": "yes", "birth_date": "2020-13-01",
        "status": "lost"})
    assert failing_fields(response) == ["birth_date", "breed", "name", "sex", "species", "status"]
    missing = await api.post("/v1/pets", token=token, json={})
    assert failing_fields(missing) == ["name", "species"]


@pytest.mark.parametrize("body, field", [
    ({"name": " \t "}, "name"), ({"name": "x" * 65}, "name"), ({"name": 7}, "name"), ({"name": None}, "name"),
    ({"species": "Dog"}, "species"), ({"breed": 5}, "breed"),
    ({"birth_date": "2020-1-1"}, "birth_date"), ({"birth_date": 0}, "birth_date"),
    ({"birth_date": "2020-02-30"}, "birth_date"), ({"birth_date": "2020-01-01T00:00:00"}, "birth_date"),
    ({"birth_date": "tomorrow"}, "birth_date"),
])
@pytest.mark.gen_test
async def test_invalid_values_name_the_field(api, app, body, field):
    _, token = await user_with_token(app)
    assert failing_fields(await api.post("/v1/pets", token=token, json={"name": "Rex", "species": "dog",
                                                                          **body})) == [field]


@pytest.mark.gen_test
async def test_birth_date_may_be_today_but_not_in_the_future(api, app):
    _, token = await user_with_token(app)
    tomorrow = (today() + dt.timedelta(days=1)).isoformat()
    future = await api.post("/v1/pets", token=token, json={"name": "Rex", "species": "dog", "birth_date": tomorrow})
    assert future.body["errors"] == [{"field": "birth_date", "message": "must not be in the future"}]
    assert (await create_pet(api, token, birth_date=today().isoformat()))["birth_date"] == today().isoformat()
    pet = await create_pet(api, token)
    patched = await api.patch(f"/v1/pets/{pet['id']}", token=token, json={"birth_date": tomorrow})
    assert failing_fields(patched) == ["birth_date"]


@pytest.mark.gen_test
async def test_patch_needs_a_change_and_refuses_null_for_required_fields(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token, breed="Pug", birth_date="2019-05-01")
    nothing = await api.patch(f"/v1/pets/{pet['id']}", token=token, json={})
    assert nothing.body["errors"] == [{"field": "body", "message": "nothing to change"}]
    nulls = await api.patch(f"/v1/pets/{pet['id']}", token=token,
                            json={"name": None, "species": None, "sex": None, "status": None})
    assert failing_fields(nulls) == ["name", "sex", "species", "status"]
    cleared = await api.patch(f"/v1/pets/{pet['id']}", token=token, json={"breed": None, "birth_date": None})
    assert cleared.status == 200
    assert (cleared.body["data"]["breed"], cleared.body["data"]["birth_date"]) == (None, None)
    assert cleared.body["data"]["name"] == "Rex"
    assert failing_fields(await api.patch(f"/v1/pets/{pet['id']}", token=token, body=b"[1]")) == ["body"]


# Created in this order; MariaDB's utf8mb4_unicode_ci orders them as BY_NAME_MARIADB (observed on MariaDB 10.11):
# case and accents ignored (émile = Emile, then by id), ß = ss, Æ, Ø and Ł letters of their own.
ACCENTED = ["Zoë", "émile", "Emile", "Ängel", "Andrés", "andres", "Øscar", "Oscar", "Oskar", "Łukasz", "Luna",
            "Straße", "Strasse", "Strand", "Æsop", "Adam", "Çelik", "Cedar", "Ñandú", "Nala", "İpek", "Ivy", "ölli",
            "Olaf", "Žofia", "Zed", "Ōmi", "mochi-2", "mochi 2", "Mochi", "Ábel", "Å", "Bo", "10 Bo", "_bo"]
BY_NAME_MARIADB = ["_bo", "10 Bo", "Å", "Ábel", "Adam", "Andrés", "andres", "Ängel", "Æsop", "Bo", "Cedar", "Çelik",
                   "émile", "Emile", "İpek", "Ivy", "Luna", "Łukasz", "Mochi", "mochi 2", "mochi-2", "Nala", "Ñandú",
                   "Olaf", "ölli", "Ōmi", "Oscar", "Oskar", "Øscar", "Strand", "Straße", "Strasse", "Zed", "Zoë",
                   "Žofia"]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_sorting_by_name_orders_accented_names_as_mariadb_does_on_both_databases(api, app):
    _, token = await user_with_token(app)
    for name in ACCENTED:
        await create_pet(api, token, name=name)

    async def walk(sort: str, limit: int) -> list[str]:
        names: list[str] = []
        query = f"/v1/pets?sort={sort}&limit={limit}"
        while True:
            response = await api.get(query, token=token)
            assert response.status == 200, response.body
            names += [p["name"] for p in response.body["data"]]
            cursor = response.body["page"]["next_cursor"]
            if cursor is None:
                return names
            query = f"/v1/pets?sort={sort}&limit={limit}&cursor={cursor}"

    assert await walk("name", 100) == BY_NAME_MARIADB
    assert await walk("name", 4) == BY_NAME_MARIADB  # the cursor continues after a name as the order has it
    assert await walk("-name", 3) == BY_NAME_MARIADB[::-1]  # ties (émile, Emile) by descending id too


async def _pets_for_listing(api: Any, token: str) -> dict[str, dict[str, Any]]:
    pets = {}
    for name, species, status in [("Bella", "dog", "available"), ("alfie", "cat", "adopted"),
                                  ("Charlie", "dog", "pending"), ("100% Dog", "dog", "available"),
                                  ("snake_eyes", "reptile", "available"), ("snakeXeyes", "reptile", "adopted")]:
        pets[name] = await create_pet(api, token, name=name, species=species, status=status)
    return pets


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_filters_sorting_and_pages(api, app):
    _, token = await user_with_token(app)
    pets = await _pets_for_listing(api, token)

    async def names(query: str) -> list[str]:
        response = await api.get(f"/v1/pets?{query}", token=token)
        assert response.status == 200, response.body
        return [p["name"] for p in response.body["data"]]

    assert await names("species=dog") == ["Bella", "Charlie", "100% Dog"]
    assert await names("status=adopted") == ["alfie", "snakeXeyes"]
    assert await names("species=dog&status=available") == ["Bella", "100% Dog"]
    assert await names("q=ALF") == ["alfie"]
    assert await names("q=bEl") == ["Bella"]
    assert await names("q=%25") == ["100% Dog"]  # % is a literal percent sign
    assert await names("q=_") == ["snake_eyes"]  # _ is a literal underscore
    assert await names("q=e_e") == ["snake_eyes"]
    assert await names("q=!") == []
    assert await names("q=%20D") == ["100% Dog"]  # kept as sent: a space is something to find
    assert await names("species=fish") == []

    by_id = [p["name"] for p in sorted(pets.values(), key=lambda p: p["id"])]
    assert await names("sort=id") == by_id
    assert await names("sort=-id") == by_id[::-1]
    assert await names("") == by_id
    by_name = ["100% Dog", "alfie", "Bella", "Charlie", "snake_eyes", "snakeXeyes"]
    assert [n.lower() for n in await names("sort=name")] == sorted(n.lower() for n in by_name)
    assert [n.lower() for n in await names("sort=-name")] == sorted((n.lower() for n in by_name), reverse=True)
    assert await names("sort=created_at") == by_id  # created one after another
    assert await names("sort=-created_at") == by_id[::-1]

    page = await api.get("/v1/pets?sort=id&limit=2&offset=2", token=token)
    assert [p["name"] for p in page.body["data"]] == by_id[2:4]
    assert page.body["page"] == {"limit": 2, "offset": 2, "total": 6,
                                 "next_cursor": page.body["page"]["next_cursor"]}
    assert page.body["page"]["next_cursor"] is not None
    past = await api.get("/v1/pets?limit=5&offset=100", token=token)
    assert past.body["data"] == []
    assert past.body["page"] == {"limit": 5, "offset": 100, "total": 6, "next_cursor": None}
    filtered = await api.get("/v1/pets?species=dog&limit=1", token=token)
    assert filtered.body["page"] == {"limit": 1, "offset": 0, "total": 3,
                                     "next_cursor": filtered.body["page"]["next_cursor"]}
    none = await api.get("/v1/pets?q=zzz", token=token)
    assert none.body == {"code": 200, "data": [], "message": "ok",
                         "page": {"limit": 20, "offset": 0, "total": 0, "next_cursor": None}}


# Each name, then the texts that must find it (as sent, lower case, upper case, a part) and that must not.
UNICODE_NAMES = {
    "Émile": (["Émile", "émile", "ÉMILE", "E\u0301MILE", "mil"], ["emile"]),  # decomposed É too; accents count
    "ΟΔΟΣ": (["ΟΔΟΣ", "οδος", "οδοσ", "ΟΔΟ", "δος"], ["οδόσ"]),  # final sigma folds like any sigma
    "İpek": (["İpek", "i\u0307pek", "İPEK", "pek"], ["ipek"]),  # İ folds to i + combining dot above, an accent
    "ẞig": (["ẞig", "ßig", "ẞIG", "SSIG", "ssig"], ["ßog"]),  # capital sharp s, sharp s and ss are one letter
    "Ｒｅｘ": (["Ｒｅｘ", "rex", "REX", "ｘ"], ["rx"]),  # fullwidth letters are the plain ones
}


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_q_finds_every_name_by_itself_and_its_cases_alike_on_both_databases(api, app):
    _, token = await user_with_token(app)
    for name in UNICODE_NAMES:
        await create_pet(api, token, name=name)

    async def found(q: str) -> list[str]:
        response = await api.get("/v1/pets?q=" + urllib.parse.quote(q), token=token)
        assert response.status == 200, response.body
        return [p["name"] for p in response.body["data"]]

    for name, (finding, missing) in UNICODE_NAMES.items():
        for q in finding:
            assert await found(q) == [name], (name, q)
        for q in missing:
            assert await found(q) == [], (name, q)
    renamed = await api.get("/v1/pets?q=rex", token=token)
    patched = await api.patch(f"/v1/pets/{renamed.body['data'][0]['id']}", json={"name": "Ölaf"}, token=token)
    assert patched.status == 200, patched.body
    assert (await found("ölaf"), await found("ÖLAF"), await found("rex")) == (["Ölaf"], ["Ölaf"], [])
    longest = "\ufdfa" * 64  # NFKC writes each as 18 characters: the longest key fits pets.name_key
    patched = await api.patch(f"/v1/pets/{renamed.body['data'][0]['id']}", json={"name": longest}, token=token)
    assert patched.status == 200, patched.body
    assert await found("\ufdfa") == [longest]


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"), ("limit=5_0", "limit"),
    ("limit=1.5", "limit"), ("offset=-1", "offset"), ("offset=x", "offset"), ("sort=age", "sort"),
    ("sort=-status", "sort"), ("species=dragon", "species"), ("status=sold", "status"), ("q=", "q"),
    ("q=" + "x" * 65, "q"), ("owner_id=0", "owner_id"), ("owner_id=me", "owner_id"),
    ("q=%00zzz", "q"), ("q=a%09b", "q"), ("q=%E2%80%AEx", "q"),  # control characters: SQLite's LIKE stops at NUL
])
@pytest.mark.gen_test
async def test_bad_query_values_name_the_parameter(api, app, query, field):
    _, token = await user_with_token(app)
    response = await api.get(f"/v1/pets?{query}", token=token)
    assert_error(response, 400, 1001, "GET /v1/pets")
    assert [e["field"] for e in response.body["errors"]] == [field]


@pytest.mark.gen_test
async def test_several_bad_query_values_are_all_listed(api, app):
    _, token = await user_with_token(app)
    response = await api.get("/v1/pets?limit=0&offset=-1&sort=x", token=token)
    assert failing_fields(response) == ["limit", "offset", "sort"]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_another_users_pet_is_not_found_and_an_admin_sees_it(api, app):
    alice, alice_token = await user_with_token(app)
    _, bob_token = await user_with_token(app)
    pet = await create_pet(api, alice_token, name="Alice's")
    bobs = await create_pet(api, bob_token, name="Bob's", species="cat")
    missing_id = pet["id"] + 1000

    for method, json in (("GET", None), ("PATCH", {"name": "Stolen"}), ("DELETE", None)):
        theirs = await api.request(method, f"/v1/pets/{pet['id']}", token=bob_token, json=json)
        missing = await api.request(method, f"/v1/pets/{missing_id}", token=bob_token, json=json)
        assert_error(theirs, 404, 1002, f"{method} /v1/pets/{pet['id']}")
        assert {**theirs.body, "request": ""} == {**missing.body, "request": ""}
        assert "ETag" not in theirs.headers
    conditional = await api.patch(f"/v1/pets/{pet['id']}", token=bob_token, json={"name": "x"},
                                  headers={"If-Match": '"v1"'})
    assert_error(conditional, 404, 1002, f"PATCH /v1/pets/{pet['id']}")
    bob_list = await api.get("/v1/pets", token=bob_token)
    assert [p["id"] for p in bob_list.body["data"]] == [bobs["id"]]
    assert (await api.get(f"/v1/pets?owner_id={alice.id}", token=bob_token)).body["data"] == []
    assert (await api.get(f"/v1/pets/{pet['id']}", token=alice_token)).body["data"] == pet  # untouched

    _, admin_token = await user_with_token(app, role="admin")
    everything = await api.get("/v1/pets", token=admin_token)
    assert [p["id"] for p in everything.body["data"]] == [pet["id"], bobs["id"]]
    assert everything.body["page"]["total"] == 2
    only_alice = await api.get(f"/v1/pets?owner_id={alice.id}", token=admin_token)
    assert [p["id"] for p in only_alice.body["data"]] == [pet["id"]]
    assert (await api.get(f"/v1/pets/{pet['id']}", token=admin_token)).body["data"] == {**pet, "role": None}
    patched = await api.patch(f"/v1/pets/{pet['id']}", token=admin_token, json={"status": "pending"})
    assert patched.status == 200 and patched.body["data"]["owner_id"] == alice.id
    own = await api.post("/v1/pets", token=admin_token, json={"name": "Admin's", "species": "fish"})
    assert own.status == 201 and own.body["data"]["owner_id"] != alice.id
    assert (await api.delete(f"/v1/pets/{pet['id']}", token=admin_token)).status == 200


@pytest.mark.gen_test
async def test_stale_if_match_is_412_and_writes_nothing(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}"
    first = await api.patch(path, token=token, json={"name": "Max"}, headers={"If-Match": '"v1"'})
    assert first.status == 200 and first.headers["ETag"] == '"v2"'
    current = first.body["data"]
    for tag in ('"v1"', '"v3"', 'W/"v1"', '"abc"', '"v1", "v3"', "v2", '"v2', "2", "garbage"):
        stale = await api.patch(path, token=token, json={"name": "Late"}, headers={"If-Match": tag})
        assert_error(stale, 412, 1009, f"PATCH {path}")
        assert (await api.get(path, token=token)).body["data"] == current
    stale_delete = await api.delete(path, token=token, headers={"If-Match": '"v1"'})
    assert_error(stale_delete, 412, 1009, f"DELETE {path}")
    assert (await api.get(path, token=token)).status == 200
    for tag in ('W/"v2"', "", " "):  # strong comparison: a weak tag never matches; an empty header matches nothing
        refused = await api.patch(path, token=token, json={"sex": "female"}, headers={"If-Match": tag})
        assert_error(refused, 412, 1009, f"PATCH {path}")
    strong = await api.patch(path, token=token, json={"sex": "female"}, headers={"If-Match": 'W/"v2", "v2"'})
    assert strong.status == 200 and strong.headers["ETag"] == '"v3"'
    listed = await api.patch(path, token=token, json={"sex": "male"}, headers={"If-Match": '"v1", "v3"'})
    assert listed.status == 200 and listed.headers["ETag"] == '"v4"'
    anything = await api.patch(path, token=token, json={"sex": "unknown"}, headers={"If-Match": "*"})
    assert anything.status == 200 and anything.body["data"]["version"] == 5
    assert (await api.delete(path, token=token, headers={"If-Match": '"v5"'})).status == 200


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_patch_of_the_current_values_changes_nothing_but_still_checks_its_conditions(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)  # breed null: "" means null
    path = f"/v1/pets/{pet['id']}"
    synced = (await api.get("/v1/sync", token=token)).body["data"]["cursor"]
    same = await api.patch(path, token=token, json={"name": "Rex", "breed": ""}, headers={"If-Match": '"v1"'})
    assert (same.status, same.headers["ETag"], same.body["data"]) == (200, '"v1"', pet)
    bare = await api.patch(path, token=token, json={"species": "dog", "status": "available"})
    assert (bare.status, bare.headers["ETag"], bare.body["data"]) == (200, '"v1"', pet)
    history = await api.get(f"{path}/history", token=token)
    assert [(h["action"], h["changed"]) for h in history.body["data"]] == [("created", {})]
    assert (await api.get(f"/v1/sync?cursor={synced}", token=token)).body["data"]["changes"] == []
    for stale in ({"If-Match": '"v2"'}, {"If-Match": 'W/"v1"'}, {"If-None-Match": '"v1"'}, {"If-None-Match": "*"}):
        refused = await api.patch(path, token=token, json={"name": "Rex"}, headers=stale)
        assert_error(refused, 412, 1009, f"PATCH {path}")
    another = await api.patch(path, token=token, json={"name": "Max"}, headers={"If-Match": '"v1"'})  # still current
    assert (another.status, another.headers["ETag"], another.body["data"]["name"]) == (200, '"v2"', "Max")
    assert_error(await api.patch(path, token=token, json={"name": "Max"}, headers={"If-Match": '"v1"'}), 412, 1009,
                 f"PATCH {path}")
    renamed = await api.patch(path, token=token, json={"name": "max"})  # case is a change
    assert (renamed.status, renamed.body["data"]["version"]) == (200, 3)


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_if_match_names_a_version_only_by_the_exact_tag_sent(api, app):
    """Strong comparison is character for character: "v01" is not the server's "v1", nor is a tag inside another
    element (w/"v1" is not the weak-tag syntax, x"v1" not an entity tag); each is 412 and nothing changes."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}"
    for tag in ('"v01"', '"v0000000001"', 'w/"v1"', 'x"v1"', '"v1" x', '"v0"'):
        refused = await api.patch(path, token=token, json={"name": "Late"}, headers={"If-Match": tag})
        assert_error(refused, 412, 1009, f"PATCH {path}")
        unchanged = await api.get(path, token=token)
        assert (unchanged.body["data"], unchanged.headers["ETag"]) == (pet, '"v1"'), tag
    assert (await api.patch(path, token=token, json={"name": "Max"}, headers={"If-Match": '"v1"'})).status == 200
    for tag in ('"v0000000002"', '"v02"'):
        assert_error(await api.delete(path, token=token, headers={"If-Match": tag}), 412, 1009, f"DELETE {path}")
        kept = await api.get(path, token=token)
        assert (kept.status, kept.body["data"]["name"], kept.headers["ETag"]) == (200, "Max", '"v2"')
    assert (await api.delete(path, token=token, headers={"If-Match": '"v2"'})).status == 200


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_patches_with_one_etag_exactly_one_wins(api, app, base_url):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}"
    wide = Api(AsyncHTTPClient(force_instance=True, max_clients=20), base_url)  # all 20 in flight at once
    try:
        responses = await asyncio.gather(*(
            wide.patch(path, token=token, json={"name": f"Writer {i}"}, headers={"If-Match": '"v1"'})
            for i in range(20)))
    finally:
        wide.client.close()
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [412] * 19, statuses
    winner = next(r for r in responses if r.status == 200).body["data"]
    assert all(r.body["error_code"] == 1009 for r in responses if r.status == 412)
    final = await api.get(path, token=token)
    assert final.body["data"] == winner and winner["version"] == 2


@pytest.mark.parametrize("method, path, scope", [
    ("GET", "/v1/pets", "pets:read"), ("POST", "/v1/pets", "pets:write"), ("GET", "/v1/pets/{id}", "pets:read"),
    ("PATCH", "/v1/pets/{id}", "pets:write"), ("DELETE", "/v1/pets/{id}", "pets:write"),
])
@pytest.mark.gen_test
async def test_scopes_are_required(api, app, method, path, scope):
    user, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = path.replace("{id}", str(pet["id"]))
    body = {"name": "Rex", "species": "dog"} if method in ("POST", "PATCH") else None
    lacking = token_for(app, user.id, sorted({"users:me", "pets:read", "pets:write"} - {scope}))
    forbidden = await api.request(method, path, token=lacking, json=body)
    assert_error(forbidden, 403, 1004, f"{method} {path}")
    assert scope in forbidden.body["message"]
    anonymous = await api.request(method, path, json=body)
    assert_error(anonymous, 401, 1003, f"{method} {path}")
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"] == pet


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_include_total_false_leaves_the_count_out_and_keeps_the_page(api, app):
    _, admin_token = await user_with_token(app, role="admin")
    _, token = await user_with_token(app)
    pets = [await create_pet(api, token, name=name, species="cat") for name in ("Ada", "Bo", "Cy")]
    counted = await api.get("/v1/pets?limit=2&sort=name", token=admin_token)
    uncounted = await api.get("/v1/pets?limit=2&sort=name&include_total=false", token=admin_token)
    assert counted.status == uncounted.status == 200, uncounted.body
    assert counted.body["page"]["total"] == 3 and uncounted.body["page"]["total"] is None
    assert uncounted.body["data"] == counted.body["data"] == [{**p, "role": None} for p in pets[:2]]
    assert uncounted.body["page"]["next_cursor"] == counted.body["page"]["next_cursor"] is not None
    assert uncounted.headers["ETag"] != counted.headers["ETag"]  # the answers differ (the total)
    rest = await api.get(f"/v1/pets?limit=2&sort=name&include_total=false&cursor={counted.body['page']['next_cursor']}",
                         token=admin_token)
    assert rest.status == 200 and [p["id"] for p in rest.body["data"]] == [pets[2]["id"]], rest.body
    assert rest.body["page"] == {"limit": 2, "offset": 0, "total": None, "next_cursor": None}
    past = await api.get("/v1/pets?offset=10&include_total=false", token=token)
    assert past.status == 200 and past.body["data"] == [] and past.body["page"]["total"] is None, past.body
    users = await api.get("/v1/users?limit=1&include_total=false", token=admin_token)
    assert users.status == 200 and len(users.body["data"]) == 1 and users.body["page"]["total"] is None, users.body
    bad = await api.get("/v1/pets?include_total=maybe", token=token)
    assert_error(bad, 400, 1001, "GET /v1/pets")
    assert [e["field"] for e in bad.body["errors"]] == ["include_total"]
