"""GET /v1/sync over HTTP: the first sync, deltas with tombstones, memberships, cursors that are tampered or expired."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import purge_changes
from server.services import utcnow
from tests.factories import assert_error, both_backends, create_pet, user_with_token
from tests.plugins.sync.client import apply, share, unshare

RECORD = {"kind": "weight", "date": "2024-01-01", "value": 3.5}


async def sync(api: Any, token: str, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """One page, asserted to be a success in the contract's shape."""
    params = "&".join(f"{k}={v}" for k, v in (("cursor", cursor), ("limit", limit)) if v is not None)
    response = await api.get("/v1/sync" + (f"?{params}" if params else ""), token=token)
    assert response.status == 200, response.body
    assert set(response.body) == {"code", "data", "message"} and response.body["message"] == "ok"
    assert set(response.body["data"]) == {"changes", "cursor", "has_more"}
    return response.body["data"]


async def sync_all(api: Any, token: str, cursor: str | None = None, limit: int = 500,
                   state: dict[tuple[str, int], Any] | None = None) -> tuple[dict[tuple[str, int], Any], str]:
    """Every page from cursor, applied to state (a client's local copy); the state and the last cursor."""
    state = {} if state is None else state
    while True:
        page = await sync(api, token, cursor, limit)
        apply(state, page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return state, cursor


async def what_get_returns(api: Any, token: str) -> dict[tuple[str, int], Any]:
    """The caller's pets and records as the ordinary GETs return them."""
    state: dict[tuple[str, int], Any] = {}
    pets = await api.get("/v1/pets?limit=100", token=token)
    for pet in pets.body["data"]:
        state[("pet", pet["id"])] = pet
        records = await api.get(f"/v1/pets/{pet['id']}/records?limit=100", token=token)
        state.update((("record", r["id"]), r) for r in records.body["data"])
    return state


async def add_record(api: Any, token: str, pet_id: int, **fields: Any) -> dict[str, Any]:
    response = await api.post(f"/v1/pets/{pet_id}/records", token=token, json={**RECORD, **fields})
    assert response.status == 201, response.body
    return response.body["data"]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_first_sync_lists_everything_the_caller_sees_page_by_page_then_continues_from_the_log(api, app):
    _, token = await user_with_token(app)
    _, stranger = await user_with_token(app)
    pets = [await create_pet(api, token, name=f"Pet {i}") for i in range(3)]
    records = [await add_record(api, token, pets[0]["id"], note=f"r{i}") for i in range(2)]
    await create_pet(api, stranger, name="Not yours")

    first = await sync(api, token, limit=2)
    assert [(c["type"], c["id"], c["op"]) for c in first["changes"]] == [
        ("pet", pets[0]["id"], "upsert"), ("pet", pets[1]["id"], "upsert")]
    assert first["has_more"] is True
    state, cursor = await sync_all(api, token, first["cursor"], limit=2, state={})
    apply(state, first["changes"])
    assert state == await what_get_returns(api, token)
    assert {k for k in state if k[0] == "record"} == {("record", r["id"]) for r in records}

    quiet = await sync(api, token, cursor)
    assert quiet == {"changes": [], "cursor": quiet["cursor"], "has_more": False}
    later = await create_pet(api, token, name="Later")
    after = await sync(api, token, cursor)
    assert [(c["type"], c["id"], c["op"], c["data"]) for c in after["changes"]] == [
        ("pet", later["id"], "upsert", {**later})]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_first_sync_that_exactly_fills_its_page_says_there_is_no_more(api, app):
    _, token = await user_with_token(app)
    pets = [await create_pet(api, token, name=f"Pet {i}") for i in range(2)]

    page = await sync(api, token, limit=2)  # two pets, no record: the listing ends with this page
    assert [(c["type"], c["id"]) for c in page["changes"]] == [("pet", p["id"]) for p in pets]
    assert page["has_more"] is False
    assert await sync(api, token, page["cursor"]) == {"changes": [], "cursor": page["cursor"], "has_more": False}

    record = await add_record(api, token, pets[0]["id"])  # now a record follows the pets: there is more
    fuller = await sync(api, token, limit=2)
    assert fuller["has_more"] is True
    rest = await sync(api, token, fuller["cursor"], limit=2)
    assert [(c["type"], c["id"]) for c in rest["changes"]] == [("record", record["id"])]
    assert rest["has_more"] is False


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_changes_arrive_as_the_latest_state_and_deletions_as_tombstones(api, app):
    _, token = await user_with_token(app)
    kept = await create_pet(api, token, name="Kept")
    gone = await create_pet(api, token, name="Gone")
    record = await add_record(api, token, kept["id"])
    _, cursor = await sync_all(api, token)

    for name in ("Renamed once", "Renamed twice"):
        assert (await api.patch(f"/v1/pets/{kept['id']}", json={"name": name}, token=token)).status == 200
    assert (await api.delete(f"/v1/pets/{kept['id']}/records/{record['id']}", token=token)).status == 200
    assert (await api.delete(f"/v1/pets/{gone['id']}", token=token)).status == 200
    page = await sync(api, token, cursor)
    current = (await api.get(f"/v1/pets/{kept['id']}", token=token)).body["data"]
    assert [(c["type"], c["id"], c["op"], c["data"]) for c in page["changes"]] == [
        ("pet", kept["id"], "upsert", current), ("record", record["id"], "delete", None),
        ("pet", gone["id"], "delete", None)]
    assert current["name"] == "Renamed twice"
    versions = [c["version"] for c in page["changes"]]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert page["has_more"] is False
    assert (await sync(api, token, page["cursor"]))["changes"] == []


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_member_gets_a_shared_pets_changes_and_deletes_for_it_and_its_records_when_removed(api, app):
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    pet = await create_pet(api, owner_token, name="Shared")
    record = await add_record(api, owner_token, pet["id"])
    _, member_cursor = await sync_all(api, member_token)

    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    gained = await sync(api, member_token, member_cursor)
    assert [(c["type"], c["id"], c["op"]) for c in gained["changes"]] == [
        ("pet", pet["id"], "upsert"), ("record", record["id"], "upsert")]
    assert gained["changes"][0]["data"]["role"] == "viewer"
    assert gained["changes"][1]["data"] == record
    second = await add_record(api, owner_token, pet["id"], note="seen by both")
    seen = await sync(api, member_token, gained["cursor"])
    assert [(c["type"], c["id"], c["op"], c["data"]) for c in seen["changes"]] == [
        ("record", second["id"], "upsert", second)]

    await unshare(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    lost = await sync(api, member_token, seen["cursor"])
    assert [(c["type"], c["id"], c["op"], c["data"]) for c in lost["changes"]] == [
        ("pet", pet["id"], "delete", None), ("record", record["id"], "delete", None),
        ("record", second["id"], "delete", None)]
    await add_record(api, owner_token, pet["id"], note="after the removal")
    assert (await api.patch(f"/v1/pets/{pet['id']}", json={"name": "Not theirs now"}, token=owner_token)).status == 200
    assert (await sync(api, member_token, lost["cursor"]))["changes"] == []


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_record_deleted_while_the_member_was_removed_is_deleted_when_the_pet_is_shared_again(api, app):
    """Removed, a record deleted meanwhile, shared again: the member's next sync drops that record too (its
    deletion came while the member could not see the pet, and folding the removal's deletes into the re-share's
    upserts left it on the client for good)."""
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    pet = await create_pet(api, owner_token, name="Shared")
    gone, kept = await add_record(api, owner_token, pet["id"]), await add_record(api, owner_token, pet["id"])
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    state, cursor = await sync_all(api, member_token)
    assert {("record", gone["id"]), ("record", kept["id"])} <= set(state)

    await unshare(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    await sequence(app.db)  # numbered apart, as when minutes pass: the member's access span closes here
    deleted = await api.delete(f"/v1/pets/{pet['id']}/records/{gone['id']}", token=owner_token)
    assert deleted.body == {"code": 200, "data": None, "message": "ok"}
    await sequence(app.db)
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    page = await sync(api, member_token, cursor)
    assert sorted((c["type"], c["id"], c["op"]) for c in page["changes"]) == [
        ("pet", pet["id"], "upsert"), ("record", gone["id"], "delete"), ("record", kept["id"], "upsert")]
    apply(state, page["changes"])
    assert state == await what_get_returns(api, member_token)


async def delete_record(api: Any, token: str, pet_id: int, record_id: int) -> None:
    deleted = await api.delete(f"/v1/pets/{pet_id}/records/{record_id}", token=token)
    assert deleted.body == {"code": 200, "data": None, "message": "ok"}


def ops(page: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(c["type"], c["id"], c["op"]) for c in page["changes"]]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_removed_member_gets_no_id_of_a_record_created_after_the_removal(api, app):
    """The removal deletes the pet and the records the member held: not those the owner added since (their ids,
    their number, that they exist at all are none of the member's business any more)."""
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    pet = await create_pet(api, owner_token, name="Shared")
    held = await add_record(api, owner_token, pet["id"], note="held")
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    state, cursor = await sync_all(api, member_token)
    assert set(state) == {("pet", pet["id"]), ("record", held["id"])}

    await unshare(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    await sequence(app.db)  # numbered apart, as when minutes pass: the member's access span closes here
    after = [await add_record(api, owner_token, pet["id"], note=f"after {i}") for i in range(3)]
    page = await sync(api, member_token, cursor)
    assert [(c["type"], c["id"], c["op"], c["data"]) for c in page["changes"]] == [
        ("pet", pet["id"], "delete", None), ("record", held["id"], "delete", None)]
    assert not {r["id"] for r in after} & {c["id"] for c in page["changes"] if c["type"] == "record"}
    apply(state, page["changes"])
    assert state == {} == await what_get_returns(api, member_token)
    assert (await sync(api, member_token, page["cursor"]))["changes"] == []


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_newly_shared_member_gets_no_id_of_a_record_deleted_before_the_share(api, app):
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    _, cursor = await sync_all(api, member_token)  # an empty account with a cursor
    pet = await create_pet(api, owner_token, name="Shared")
    gone = [await add_record(api, owner_token, pet["id"], note=f"private {i}") for i in range(3)]
    for record in gone:
        await delete_record(api, owner_token, pet["id"], record["id"])
    kept = await add_record(api, owner_token, pet["id"], note="kept")
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    page = await sync(api, member_token, cursor)
    assert ops(page) == [("pet", pet["id"], "upsert"), ("record", kept["id"], "upsert")]
    assert page["changes"][1]["data"] == kept
    assert page["has_more"] is False


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_shared_again_a_member_gets_what_is_there_and_nothing_of_what_came_and_went_meanwhile(api, app):
    """Removed, then shared again: the records made in between come as upserts if they are still there; one made
    and deleted in between never shows up, not even as a delete, from a cursor taken before the removal or in the
    gap. One the member held and the owner deleted in between is deleted (with the removal's deletes)."""
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    pet = await create_pet(api, owner_token, name="Shared")
    held, dropped = [await add_record(api, owner_token, pet["id"], note=n) for n in ("held", "dropped")]
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    state, before = await sync_all(api, member_token)

    await unshare(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    await sequence(app.db)
    gap_state, gap = await sync_all(api, member_token, before, state=dict(state))
    assert gap_state == {}
    came = await add_record(api, owner_token, pet["id"], note="came")
    went = await add_record(api, owner_token, pet["id"], note="went")
    await delete_record(api, owner_token, pet["id"], went["id"])
    await delete_record(api, owner_token, pet["id"], dropped["id"])
    await sequence(app.db)
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)

    from_before = await sync(api, member_token, before)
    assert sorted(ops(from_before)) == [("pet", pet["id"], "upsert"), ("record", held["id"], "upsert"),
                                        ("record", dropped["id"], "delete"), ("record", came["id"], "upsert")]
    from_gap = await sync(api, member_token, gap)
    assert ops(from_gap) == [("pet", pet["id"], "upsert"), ("record", held["id"], "upsert"),
                             ("record", came["id"], "upsert")]
    expected = await what_get_returns(api, member_token)
    for page, local in ((from_before, state), (from_gap, gap_state)):
        apply(local, page["changes"])
        assert local == expected


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_every_member_of_a_deleted_pet_gets_its_delete(api, app):
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    pet = await create_pet(api, owner_token)
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id, role="caretaker")
    _, cursor = await sync_all(api, member_token)
    assert (await api.delete(f"/v1/pets/{pet['id']}", token=owner_token)).status == 200
    page = await sync(api, member_token, cursor)
    assert [(c["type"], c["id"], c["op"]) for c in page["changes"]] == [("pet", pet["id"], "delete")]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_cursor_limited_page_can_cut_inside_a_membership_and_resumes_exactly_after_it(api, app):
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    pet = await create_pet(api, owner_token)
    records = [await add_record(api, owner_token, pet["id"], note=str(i)) for i in range(3)]
    _, cursor = await sync_all(api, member_token)
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    got = []
    while True:
        page = await sync(api, member_token, cursor, limit=1)
        assert len(page["changes"]) <= 1
        got += [(c["type"], c["id"]) for c in page["changes"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert got == [("pet", pet["id"])] + [("record", r["id"]) for r in records]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_tampered_or_foreign_cursor_is_400_and_an_expired_one_410(api, app):
    _, token = await user_with_token(app)
    _, other = await user_with_token(app)
    await create_pet(api, token)
    _, cursor = await sync_all(api, token)
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for bad in (tampered, "garbage", "%E2%98%83"):
        response = await api.get(f"/v1/sync?cursor={bad}", token=token)
        assert_error(response, 400, 1001, "GET /v1/sync", "invalid cursor")
        assert response.body["errors"] == [{"field": "cursor", "message": "not a cursor of this API"}]
    assert_error(await api.get(f"/v1/sync?cursor={cursor}", token=other), 400, 1001, "GET /v1/sync")
    for limit in ("0", "501", "x"):
        response = await api.get(f"/v1/sync?limit={limit}", token=token)
        assert_error(response, 400, 1001, "GET /v1/sync")
        assert response.body["errors"][0]["field"] == "limit"

    await create_pet(api, token, name="Then purged")
    assert await purge_changes(app.db, before=utcnow() + dt.timedelta(seconds=1)) > 0
    expired = await api.get(f"/v1/sync?cursor={cursor}", token=token)
    assert_error(expired, 410, 1012, "GET /v1/sync", "sync cursor expired; sync again from the start")
    chinese = await api.get(f"/v1/sync?cursor={cursor}", token=token, headers={"Accept-Language": "zh"})
    assert_error(chinese, 410, 1012, "GET /v1/sync", "同步游标已过期，请从头同步")
    state, fresh = await sync_all(api, token)  # the way out: from the start
    assert state == await what_get_returns(api, token)
    assert (await sync(api, token, fresh))["changes"] == []


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_sync_needs_a_token_with_pets_read(api, app):
    assert_error(await api.get("/v1/sync"), 401, 1003, "GET /v1/sync")
    user, _ = await user_with_token(app)
    no_scope = app.tokens.issue(user.id, ["users:me"]).token
    assert_error(await api.get("/v1/sync", token=no_scope), 403, 1004, "GET /v1/sync")
