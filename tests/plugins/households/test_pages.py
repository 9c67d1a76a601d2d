"""The households lists through HTTP on MariaDB and SQLite honour the whole page contract of GET /v1/pets: a cursor
walk gives every item once in the list's order, a garbled cursor, another list's cursor or one with an offset is
400/1001, and include_total=false leaves the total out."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.app import PetAPI
from tests.factories import Api, assert_error, both_backends, create_pet, unique_email, user_with_token
from tests.plugins.households.family import invite, person, share


async def lists(app: PetAPI, api: Api) -> dict[str, tuple[str, str]]:
    """Each households list with at least 5 items: path -> the token of a caller who reads it."""
    ann = await person(app, "Ann")
    pet = await create_pet(api, ann.token)
    for i in range(4):  # 5 members; each joins with an invitation and its acceptance (9 history entries)
        await share(api, ann, pet["id"], await person(app, f"Member{i}"), ("caretaker", "viewer")[i % 2])
    for _ in range(5):  # 5 pending invitations of the pet
        await invite(api, ann, pet["id"], unique_email("pending"), "viewer")
    zoe = await person(app, "Zoe")
    for _ in range(5):  # 5 invitations to one address, each to another pet
        await invite(api, ann, (await create_pet(api, ann.token))["id"], zoe.email, "caretaker")
    return {f"/v1/pets/{pet['id']}/members": ("members", ann.token),
            f"/v1/pets/{pet['id']}/history": ("history", ann.token),
            f"/v1/pets/{pet['id']}/invitations": ("invitations", ann.token),
            "/v1/invitations": ("invitations", zoe.token)}


async def walk(api: Api, path: str, token: str, limit: int) -> list[dict[str, Any]]:
    """Every item of the list, page after page by next_cursor (each page checked against the contract)."""
    everything = await api.get(f"{path}?limit=100", token=token)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await api.get(f"{path}?limit={limit}" + (f"&cursor={cursor}" if cursor else ""), token=token)
        assert response.status == 200, response.body
        cursor = response.body["page"]["next_cursor"]
        assert response.body["page"] == {"limit": limit, "offset": 0, "total": everything.body["page"]["total"],
                                         "next_cursor": cursor}
        seen += response.body["data"]
        if cursor is None:
            break
        assert len(response.body["data"]) == limit and len(seen) < len(everything.body["data"]), path
    assert everything.body["page"] == {"limit": 100, "offset": 0, "total": len(seen), "next_cursor": None}
    assert seen == everything.body["data"], path  # each item once, in the list's order
    return seen


@both_backends
@pytest.mark.gen_test(timeout=90)
async def test_a_cursor_walk_gives_every_item_once_in_order(app, api):
    for path, (_, token) in (await lists(app, api)).items():
        for limit in (1, 2):  # 1: the members' first cursor is the owner's, ranked before every other role
            seen = await walk(api, path, token, limit)
            assert len(seen) >= 5, path
        if path.endswith("/members"):
            assert [m["role"] for m in seen][:1] == ["owner"] and len(seen) == 5
        if path.endswith("/history"):
            assert [e["id"] for e in seen] == sorted((e["id"] for e in seen), reverse=True)
            times = [dt.datetime.fromisoformat(e["at"]) for e in seen]
            assert times == sorted(times, reverse=True)
        if "invitations" in path:
            assert [i["id"] for i in seen] == sorted((i["id"] for i in seen), reverse=True) and len(seen) == 5


@both_backends
@pytest.mark.gen_test(timeout=90)
async def test_a_garbled_or_foreign_cursor_or_one_with_an_offset_is_400(app, api):
    found = await lists(app, api)
    cursors = {path: (await api.get(f"{path}?limit=2", token=token)).body["page"]["next_cursor"]
               for path, (_, token) in found.items()}
    for path, (kind, token) in found.items():
        foreign = next(cursor for other, cursor in cursors.items() if found[other][0] != kind)
        for cursor in ("zzz", foreign):
            response = await api.get(f"{path}?cursor={cursor}", token=token)
            assert_error(response, 400, 1001, f"GET {path}", "invalid cursor")
            assert response.body["errors"] == [{"field": "cursor", "message": "not a cursor of this list and sort"}]
        both = await api.get(f"{path}?limit=2&offset=2&cursor={cursors[path]}", token=token)
        assert_error(both, 400, 1001, f"GET {path}", "offset and cursor exclude each other")
        assert both.body["errors"] == [{"field": "offset", "message": "must be 0 (or absent) with a cursor"}]


@both_backends
@pytest.mark.gen_test(timeout=90)
async def test_include_total_false_leaves_the_count_out_and_keeps_the_page(app, api):
    for path, (_, token) in (await lists(app, api)).items():
        counted = await api.get(f"{path}?limit=2", token=token)
        uncounted = await api.get(f"{path}?limit=2&include_total=false", token=token)
        assert uncounted.status == 200, uncounted.body
        assert counted.body["page"]["total"] >= 5
        assert (uncounted.body["data"], uncounted.body["page"]) == (counted.body["data"], {
            "limit": 2, "offset": 0, "total": None, "next_cursor": counted.body["page"]["next_cursor"]})
        cursor = counted.body["page"]["next_cursor"]
        rest = await api.get(f"{path}?limit=2&include_total=false&cursor={cursor}", token=token)
        assert rest.status == 200 and rest.body["page"]["total"] is None, rest.body
        assert rest.body["data"] == (await api.get(f"{path}?limit=2&offset=2", token=token)).body["data"]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_unverified_callers_empty_invitations_check_the_cursor_too(app, api):
    _, token = await user_with_token(app)  # its e-mail not verified: no invitation is shown
    listed = await api.get("/v1/invitations?include_total=false", token=token)
    assert (listed.status, listed.body["data"], listed.body["page"]) == (
        200, [], {"limit": 20, "offset": 0, "total": None, "next_cursor": None})
    assert_error(await api.get("/v1/invitations?cursor=zzz", token=token), 400, 1001, "GET /v1/invitations",
                 "invalid cursor")
