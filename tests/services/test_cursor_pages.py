"""Cursor pagination on every list: each sort walks the whole collection once, with no duplicate and no gap, while
rows are inserted and deleted between pages; a page deep in 200,000 pets costs what the first does."""

from __future__ import annotations

import itertools
import random
import statistics
import time
from typing import Any

import pytest

from server.services import encode_cursor
from tests.factories import assert_error, both_backends, create_pet, user_with_token


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"db_statement_timeout": 60}  # the 200,000-pet lists count every pet on each page


SORTS = ("id", "-id", "name", "-name", "created_at", "-created_at")
NAMES = ["Rex", "rex", "Ánna", "anna", "Bo", "Zed", "bo", "Éclair", "mia", "Mia"]


def in_order(pets: list[dict[str, Any]], sort: str) -> bool:
    field = sort.lstrip("-")
    keys = [((p[field].casefold() if field == "name" else p[field]), p["id"]) for p in pets]
    if field == "name":  # the databases' collations differ on accents; only case-insensitive ties are checked
        return True
    return keys == sorted(keys, reverse=sort.startswith("-"))


@both_backends
@pytest.mark.gen_test(timeout=120)
async def test_every_sort_walks_the_whole_list_once_while_rows_come_and_go(api, app):
    _, token = await user_with_token(app)
    stable = [await create_pet(api, token, name=NAMES[i % len(NAMES)]) for i in range(30)]
    rng = random.Random(7)
    for sort in SORTS:
        doomed = [await create_pet(api, token, name=rng.choice(NAMES)) for _ in range(4)]
        seen: list[dict[str, Any]] = []
        cursor = None
        for turn in itertools.count():
            response = await api.get(f"/v1/pets?sort={sort}&limit=7" + (f"&cursor={cursor}" if cursor else ""),
                                     token=token)
            assert response.status == 200, response.body
            assert response.body["page"]["offset"] == 0 and response.headers["ETag"]
            seen += response.body["data"]
            cursor = response.body["page"]["next_cursor"]
            if cursor is None:
                break
            await create_pet(api, token, name=rng.choice(NAMES))  # lands before or after the walk's place
            if doomed and turn % 2 == 0:
                assert (await api.delete(f"/v1/pets/{doomed.pop()['id']}", token=token)).status == 200
        ids = [p["id"] for p in seen]
        assert len(ids) == len(set(ids)), sort  # nothing twice
        assert {p["id"] for p in stable} <= set(ids), sort  # nothing that stayed is skipped
        assert in_order(seen, sort), sort
        for pet in doomed:
            assert (await api.delete(f"/v1/pets/{pet['id']}", token=token)).status == 200


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_cursor_of_another_list_or_with_an_offset_is_400(api, app):
    _, token = await user_with_token(app)
    for _ in range(3):
        await create_pet(api, token)
    first = await api.get("/v1/pets?sort=name&limit=1", token=token)
    cursor = first.body["page"]["next_cursor"]
    for path in (f"/v1/pets?sort=id&cursor={cursor}", "/v1/pets?cursor=notacursor",
                 f"/v1/pets?sort=name&cursor={encode_cursor('name', [7, 7])}"):
        response = await api.get(path, token=token)
        assert_error(response, 400, 1001, "GET /v1/pets", "invalid cursor")
        assert response.body["errors"] == [{"field": "cursor", "message": "not a cursor of this list and sort"}]
    both = await api.get(f"/v1/pets?sort=name&cursor={cursor}&offset=1", token=token)
    assert_error(both, 400, 1001, "GET /v1/pets", "offset and cursor exclude each other")
    assert both.body["errors"] == [{"field": "offset", "message": "must be 0 (or absent) with a cursor"}]
    second = await api.get(f"/v1/pets?sort=name&limit=1&cursor={cursor}", token=token)
    assert second.status == 200 and second.body["data"][0]["id"] != first.body["data"][0]["id"]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_cursor_holding_an_integer_past_bigint_is_400_not_500(api, app):
    """A hand-made cursor's id beyond the signed 64-bit range names no row; the drivers cannot bind it."""
    _, token = await user_with_token(app)
    _, admin_token = await user_with_token(app, role="admin")
    pet = await create_pet(api, token)
    for path, request, sort, keys, who in (
            ("/v1/pets", "GET /v1/pets", "id", [2**63], token),
            ("/v1/pets?sort=-id", "GET /v1/pets", "-id", [2**64 - 1], token),
            ("/v1/users", "GET /v1/users", "id", [2**63], admin_token),
            (f"/v1/pets/{pet['id']}/records", f"GET /v1/pets/{pet['id']}/records", "-date", ["2024-01-01", 2**63],
             token)):
        response = await api.get(f"{path}{'&' if '?' in path else '?'}cursor={encode_cursor(sort, keys)}",
                                 token=who)
        assert_error(response, 400, 1001, request, "invalid cursor")
        assert response.body["errors"] == [{"field": "cursor", "message": "not a cursor of this list and sort"}]
    largest = await api.get(f"/v1/pets?sort=-id&cursor={encode_cursor('-id', [2**63 - 1])}", token=token)
    assert largest.status == 200 and [p["id"] for p in largest.body["data"]] == [pet["id"]]


@pytest.mark.slow
@pytest.mark.gen_test(timeout=600)
async def test_a_page_deep_in_200000_pets_costs_what_the_first_does(api, app):
    """Not a timing assertion: the figures go to the README."""
    user, token = await user_with_token(app)
    count = 200_000
    digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL" \
             " SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
    for chunk in range(count // 10_000):  # 10,000 rows a statement: under the test profile's statement timeout
        await app.db.execute(
            "INSERT INTO pets (owner_id, name, species, sex, status, created_at, updated_at, version)"  # noqa: S608
            " SELECT %s, CONCAT('pet ', %s + a.d + 10 * b.d + 100 * c.d + 1000 * e.d), 'dog', 'unknown', 'available',"
            f" NOW(6), NOW(6), 1 FROM {digits} a, {digits} b, {digits} c, {digits} e", (user.id, chunk * 10_000))
        await app.db.execute("INSERT INTO pet_members (pet_id, user_id, role, since) SELECT id, owner_id, 'owner',"
                             " NOW(6) FROM pets WHERE owner_id = %s AND id > (SELECT COALESCE(MAX(pet_id), 0)"
                             " FROM pet_members WHERE user_id = %s)", (user.id, user.id))
    try:
        figures = []
        for sort in ("id", "name", "-created_at"):
            first = await api.get(f"/v1/pets?sort={sort}&limit=20", token=token)
            assert first.status == 200 and first.body["page"]["total"] == count
            deep = await api.get(f"/v1/pets?sort={sort}&limit=1&offset=149999", token=token)
            last = deep.body["data"][0]
            keys = {"id": [last["id"]], "name": [last["name"], last["id"]],
                    "-created_at": [last["created_at"].rstrip("Z").replace("T", " "), last["id"]]}[sort]
            cursor = encode_cursor(sort, keys)
            timings: dict[str, list[float]] = {"first page": [], "offset 150,000": [], "cursor at 150,000": [],
                                               "no total: first page": [], "no total: cursor at 150,000": []}
            for _ in range(5):
                for label, path in (("first page", f"/v1/pets?sort={sort}&limit=20"),
                                    ("offset 150,000", f"/v1/pets?sort={sort}&limit=20&offset=150000"),
                                    ("cursor at 150,000", f"/v1/pets?sort={sort}&limit=20&cursor={cursor}"),
                                    ("no total: first page", f"/v1/pets?sort={sort}&limit=20&include_total=false"),
                                    ("no total: cursor at 150,000",
                                     f"/v1/pets?sort={sort}&limit=20&include_total=false&cursor={cursor}")):
                    began = time.perf_counter()
                    response = await api.get(path, token=token)
                    timings[label].append(time.perf_counter() - began)
                    assert response.status == 200 and len(response.body["data"]) == 20
            deep_by_cursor = await api.get(f"/v1/pets?sort={sort}&limit=20&cursor={cursor}", token=token)
            by_offset = await api.get(f"/v1/pets?sort={sort}&limit=20&offset=150000", token=token)
            assert deep_by_cursor.body["data"] == by_offset.body["data"]
            figures.append(f"sort={sort}: " + ", ".join(f"{label} {statistics.median(t) * 1000:.1f} ms"
                                                         for label, t in timings.items()))
    finally:  # in steps under the statement timeout: the next test's wipe deletes with one statement a table
        while (await app.db.execute("DELETE FROM pets WHERE owner_id = %s LIMIT 5000", (user.id,))).rowcount:
            pass
    print(f"\n{count} pets (MariaDB, median of 5):\n  " + "\n  ".join(figures))
