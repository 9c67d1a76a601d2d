"""The one access rule over HTTP: owner, caretaker, viewer, a stranger and an admin on one pet, and the changes a
write tells in its own transaction. Memberships are written as the households plugin writes them."""

from __future__ import annotations

from typing import Any

import pytest

from server.changes import Change
from server.db import Executor
from server.services import utcnow
from tests.factories import assert_error, both_backends, create_pet, user_with_token

pytestmark = both_backends


async def _share(app: Any, pet_id: int, user_id: int, role: str) -> None:
    await app.db.execute("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, %s, %s)",
                         (pet_id, user_id, role, utcnow()))


@pytest.mark.gen_test(timeout=30)
async def test_each_role_may_do_what_it_allows_and_a_stranger_finds_nothing(app, api):
    owner, owner_token = await user_with_token(app)
    carer, carer_token = await user_with_token(app)
    viewer, viewer_token = await user_with_token(app)
    _, stranger_token = await user_with_token(app)
    _, admin_token = await user_with_token(app, role="admin")
    pet = await create_pet(api, owner_token, name="Shared")
    path = f"/v1/pets/{pet['id']}"
    await _share(app, pet["id"], carer.id, "caretaker")
    await _share(app, pet["id"], viewer.id, "viewer")

    for token, role in ((owner_token, "owner"), (carer_token, "caretaker"), (viewer_token, "viewer"),
                        (admin_token, None)):
        read = await api.get(path, token=token)
        assert (read.status, read.body["data"]["id"], read.body["data"]["role"]) == (200, pet["id"], role)
        records = await api.get(f"{path}/records", token=token)
        assert (records.status, records.body["data"]) == (200, [])
    for route in (path, f"{path}/records"):
        assert_error(await api.get(route, token=stranger_token), 404, 1002, f"GET {route}")

    edited = await api.patch(path, token=carer_token, json={"breed": "Collie"})
    assert (edited.status, edited.body["data"]["breed"], edited.body["data"]["role"]) == (200, "Collie", "caretaker")
    added = await api.post(f"{path}/records", token=carer_token, json={"kind": "weight", "date": "2026-01-01"})
    assert added.status == 201, added.body
    record_path = f"{path}/records/{added.body['data']['id']}"

    assert_error(await api.patch(path, token=viewer_token, json={"breed": "X"}), 403, 1004, f"PATCH {path}")
    assert_error(await api.post(f"{path}/records", token=viewer_token, json={"kind": "weight", "date": "2026-01-01"}),
                 403, 1004, f"POST {path}/records")
    assert_error(await api.delete(record_path, token=viewer_token), 403, 1004, f"DELETE {record_path}")
    assert_error(await api.delete(path, token=carer_token), 403, 1004, f"DELETE {path}")  # only the owner
    assert_error(await api.patch(path, token=stranger_token, json={"breed": "X"}), 404, 1002, f"PATCH {path}")
    assert_error(await api.delete(path, token=stranger_token, headers={"If-Match": '"v9"'}), 404, 1002,
                 f"DELETE {path}")
    unchanged = await api.get(path, token=owner_token)
    assert (unchanged.body["data"]["breed"], unchanged.body["data"]["version"]) == ("Collie", 2)

    await app.db.execute("DELETE FROM pet_members WHERE user_id = %s", (carer.id,))  # access lost: next request
    assert_error(await api.get(path, token=carer_token), 404, 1002, f"GET {path}")
    assert (await api.delete(path, token=owner_token)).status == 200
    assert await app.db.fetch_all("SELECT * FROM pet_members WHERE pet_id = %s", (pet["id"],)) == []


@pytest.mark.gen_test(timeout=30)
async def test_the_list_shows_owned_and_shared_pets_with_the_callers_role_and_filters_by_it(app, api):
    owner, owner_token = await user_with_token(app)
    friend, friend_token = await user_with_token(app)
    mine = await create_pet(api, friend_token, name="Mine")
    shared = await create_pet(api, owner_token, name="Theirs")
    watched = await create_pet(api, owner_token, name="Watched")
    await create_pet(api, owner_token, name="Private")
    await _share(app, shared["id"], friend.id, "caretaker")
    await _share(app, watched["id"], friend.id, "viewer")

    listed = await api.get("/v1/pets?sort=name", token=friend_token)
    assert listed.status == 200
    assert [(p["name"], p["role"]) for p in listed.body["data"]] == [
        ("Mine", "owner"), ("Theirs", "caretaker"), ("Watched", "viewer")]
    assert listed.body["page"] == {"limit": 20, "offset": 0, "total": 3, "next_cursor": None}
    for role, names in (("owner", ["Mine"]), ("caretaker", ["Theirs"]), ("viewer", ["Watched"])):
        only = await api.get(f"/v1/pets?role={role}", token=friend_token)
        assert ([p["name"] for p in only.body["data"]], only.body["page"]["total"]) == (names, 1)
    by_owner = await api.get(f"/v1/pets?owner_id={owner.id}", token=friend_token)
    assert [p["name"] for p in by_owner.body["data"]] == ["Theirs", "Watched"]  # never the private one
    assert mine["owner_id"] == friend.id
    assert_error(await api.get("/v1/pets?role=admin", token=friend_token), 400, 1001, "GET /v1/pets")


@pytest.mark.gen_test(timeout=30)
async def test_a_write_tells_its_changes_in_its_own_transaction_and_a_failed_write_tells_none(app, api):
    seen: list[Change] = []

    async def listener(tx: Executor, change: Change) -> None:
        await tx.execute("SELECT 1")  # runs with the writer's transaction
        seen.append(change)
        if change.changed.get("name", (None, None))[1] == "Boom":
            raise RuntimeError("listener refused")

    app.changes.listen(listener)
    user, token = await user_with_token(app)
    pet = await create_pet(api, token, name="Rex")
    patched = await api.patch(f"/v1/pets/{pet['id']}", token=token, json={"name": "Max", "status": "adopted"})
    assert patched.status == 200
    refused = await api.patch(f"/v1/pets/{pet['id']}", token=token, json={"name": "Boom"})
    assert_error(refused, 500, 999, f"PATCH /v1/pets/{pet['id']}")
    still = await api.get(f"/v1/pets/{pet['id']}", token=token)
    assert (still.body["data"]["name"], still.body["data"]["version"]) == ("Max", 2)  # the write rolled back with it
    stale = await api.delete(f"/v1/pets/{pet['id']}", token=token, headers={"If-Match": '"v1"'})
    assert_error(stale, 412, 1009, f"DELETE /v1/pets/{pet['id']}")
    assert (await api.delete(f"/v1/pets/{pet['id']}", token=token)).status == 200

    told = [(c.type, c.action, c.object_id, c.actor_id, c.pet_id, dict(c.changed)) for c in seen]
    assert told[:2] == [("pet", "created", pet["id"], user.id, pet["id"], {}),
                        ("pet", "updated", pet["id"], user.id, pet["id"],
                         {"name": ("Rex", "Max"), "status": ("available", "adopted")})]
    assert told[2][1] == "updated" and told[3][1] == "deleted"  # the refused one ran, then the two deletes
    assert told[-1] == ("pet", "deleted", pet["id"], user.id, pet["id"], {})
    assert seen[1].data.name == "Max" and seen[-1].data is None
