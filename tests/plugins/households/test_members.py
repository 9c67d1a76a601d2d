"""Members through HTTP on MariaDB and SQLite: listing, role changes, leaving, removal and transfer refusals."""

from __future__ import annotations

import re

import pytest

from tests.factories import assert_error, both_backends
from tests.plugins.households.family import admin_token, household, person

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_every_member_lists_the_members_owner_first_without_e_mails(app, api):
    home = await household(app, api)
    ann, bob, cat = home.owner, home.members["caretaker"], home.members["viewer"]
    path = f"/v1/pets/{home.pet['id']}/members"
    for reader in (ann, bob, cat):
        listed = await api.get(path, token=reader.token)
        assert listed.status == 200, listed.body
        assert [(m["user_id"], m["nickname"], m["role"]) for m in listed.body["data"]] == [
            (ann.id, "Ann", "owner"), (bob.id, "Bob", "caretaker"), (cat.id, "Cat", "viewer")]
        assert all(set(m) == {"user_id", "nickname", "role", "since"} for m in listed.body["data"])
        assert all(re.fullmatch(TIMESTAMP, m["since"]) for m in listed.body["data"])
        assert listed.body["page"] == {"limit": 20, "offset": 0, "total": 3, "next_cursor": None}
        assert b"@" not in listed.raw
    second = await api.get(f"{path}?limit=1&offset=1", token=cat.token)
    assert ([m["user_id"] for m in second.body["data"]], second.body["page"]) == (
        [bob.id], {"limit": 1, "offset": 1, "total": 3, "next_cursor": second.body["page"]["next_cursor"]})
    assert second.body["page"]["next_cursor"] is not None


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_the_owner_changes_roles_and_the_new_role_applies_at_once(app, api):
    home = await household(app, api)
    ann, bob, cat = home.owner, home.members["caretaker"], home.members["viewer"]
    pet_path = f"/v1/pets/{home.pet['id']}"
    promoted = await api.patch(f"{pet_path}/members/{cat.id}", json={"role": "caretaker"}, token=ann.token)
    assert promoted.status == 200, promoted.body
    assert {k: v for k, v in promoted.body["data"].items() if k != "since"} == {
        "user_id": cat.id, "nickname": "Cat", "role": "caretaker"}
    assert (await api.patch(pet_path, json={"name": "Rexy"}, token=cat.token)).status == 200
    demoted = await api.patch(f"{pet_path}/members/{bob.id}", json={"role": "viewer"}, token=ann.token)
    assert demoted.body["data"]["role"] == "viewer"
    assert_error(await api.patch(pet_path, json={"name": "Bobby"}, token=bob.token), 403, 1004, f"PATCH {pet_path}")

    # The owner's role moves only by transfer; "owner" is not a role one can give; the target must be a member.
    own = f"{pet_path}/members/{ann.id}"
    assert_error(await api.patch(own, json={"role": "viewer"}, token=ann.token), 409, 2304, f"PATCH {own}",
                 "the owner's role changes only by transfer")
    refused = await api.patch(f"{pet_path}/members/{cat.id}", json={"role": "owner"}, token=ann.token)
    assert_error(refused, 400, 1001, f"PATCH {pet_path}/members/{cat.id}")
    assert [e["field"] for e in refused.body["errors"]] == ["role"]
    empty = await api.patch(f"{pet_path}/members/{cat.id}", json={}, token=ann.token)
    assert_error(empty, 400, 1001, f"PATCH {pet_path}/members/{cat.id}")
    dan = await person(app, "Dan")
    stranger = f"{pet_path}/members/{dan.id}"
    assert_error(await api.patch(stranger, json={"role": "viewer"}, token=ann.token), 404, 1002, f"PATCH {stranger}",
                 "not a member of this pet")
    # Only the owner (or pets:admin) changes roles.
    assert_error(await api.patch(f"{pet_path}/members/{bob.id}", json={"role": "caretaker"}, token=cat.token),
                 403, 1004, f"PATCH {pet_path}/members/{bob.id}")
    admin = await person(app, "Root", role="admin")
    by_admin = await api.patch(f"{pet_path}/members/{bob.id}", json={"role": "caretaker"},
                               token=admin_token(app, admin.id))
    assert by_admin.body["data"]["role"] == "caretaker"


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_role_change_gives_the_pet_a_new_etag_so_a_conditional_get_shows_the_new_role(app, api):
    home = await household(app, api)
    ann, bob, cat = home.owner, home.members["caretaker"], home.members["viewer"]
    pet_path = f"/v1/pets/{home.pet['id']}"
    seen = await api.get(pet_path, token=cat.token)
    assert (seen.status, seen.headers["ETag"], seen.body["data"]["role"]) == (200, '"v1"', "viewer")
    _, bob_cursor = await _synced(api, bob)
    assert (await api.patch(f"{pet_path}/members/{cat.id}", json={"role": "caretaker"}, token=ann.token)).status == 200

    again = await api.get(pet_path, token=cat.token, headers={"If-None-Match": '"v1"'})
    assert (again.status, again.headers["ETag"]) == (200, '"v2"'), again.body
    assert (again.body["data"]["role"], again.body["data"]["version"]) == ("caretaker", 2)
    assert (await api.get(pet_path, token=cat.token, headers={"If-None-Match": '"v2"'})).status == 304
    # Every member's copy has the new version (their If-Match follows it); another member's sync sends it.
    changes, _ = await _synced(api, bob, bob_cursor)
    assert [(c["type"], c["op"], c["data"]["version"], c["data"]["role"]) for c in changes] == [
        ("pet", "upsert", 2, "caretaker")]
    edited = await api.patch(pet_path, json={"name": "Rexy"}, token=bob.token, headers={"If-Match": '"v2"'})
    assert edited.status == 200, edited.body
    unchanged = await api.patch(f"{pet_path}/members/{cat.id}", json={"role": "caretaker"}, token=ann.token)
    assert unchanged.status == 200 and (await api.get(pet_path, token=cat.token)).body["data"]["version"] == 3


async def _synced(api, member, cursor: str | None = None) -> tuple[list[dict], str]:
    """GET /v1/sync from the cursor (or the start): the changes and the next cursor."""
    synced = await api.get("/v1/sync" + (f"?cursor={cursor}" if cursor else ""), token=member.token)
    assert synced.status == 200 and not synced.body["data"]["has_more"], synced.body
    return synced.body["data"]["changes"], synced.body["data"]["cursor"]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_members_leave_the_owner_cannot_and_others_cannot_remove(app, api):
    home = await household(app, api)
    ann, bob, cat = home.owner, home.members["caretaker"], home.members["viewer"]
    pet_path = f"/v1/pets/{home.pet['id']}"
    owner_leaves = f"{pet_path}/members/{ann.id}"
    assert_error(await api.delete(owner_leaves, token=ann.token), 409, 2305, f"DELETE {owner_leaves}",
                 "the owner cannot leave; transfer the pet first")
    admin = await person(app, "Root", role="admin")
    assert_error(await api.delete(owner_leaves, token=admin_token(app, admin.id)), 409, 2305, f"DELETE {owner_leaves}")
    # A caretaker or viewer cannot remove anyone else.
    assert_error(await api.delete(f"{pet_path}/members/{cat.id}", token=bob.token), 403, 1004,
                 f"DELETE {pet_path}/members/{cat.id}")
    assert_error(await api.delete(owner_leaves, token=cat.token), 403, 1004, f"DELETE {owner_leaves}")
    # Cat leaves: her next request is a 404; the others keep their roles.
    left = await api.delete(f"{pet_path}/members/{cat.id}", token=cat.token)
    assert left.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.get(pet_path, token=cat.token), 404, 1002, f"GET {pet_path}")
    assert_error(await api.delete(f"{pet_path}/members/{cat.id}", token=cat.token), 404, 1002,
                 f"DELETE {pet_path}/members/{cat.id}")
    members = await api.get(f"{pet_path}/members", token=bob.token)
    assert [m["user_id"] for m in members.body["data"]] == [ann.id, bob.id]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_transfer_names_a_member_other_than_the_owner(app, api):
    home = await household(app, api)
    ann = home.owner
    pet_path = f"/v1/pets/{home.pet['id']}"
    dan = await person(app, "Dan")
    assert_error(await api.post(f"{pet_path}/transfer", json={"user_id": dan.id}, token=ann.token), 409, 2307,
                 f"POST {pet_path}/transfer", "the user is not a member of this pet")
    assert_error(await api.post(f"{pet_path}/transfer", json={"user_id": ann.id}, token=ann.token), 409, 2306,
                 f"POST {pet_path}/transfer", "the user already owns this pet")
    for body in ({}, {"user_id": str(dan.id)}, {"user_id": 0}, {"user_id": dan.id + 0.5}, {"user_id": True},
                 {"user_id": 2**63}):
        assert_error(await api.post(f"{pet_path}/transfer", json=body, token=ann.token), 400, 1001,
                     f"POST {pet_path}/transfer")
    pet = (await api.get(pet_path, token=ann.token)).body["data"]
    assert (pet["owner_id"], pet["role"], pet["version"]) == (ann.id, "owner", home.pet["version"])
    # pets:admin may transfer a pet it has no role on; the owner becomes a caretaker.
    admin = await person(app, "Root", role="admin")
    bob = home.members["caretaker"]
    moved = await api.post(f"{pet_path}/transfer", json={"user_id": float(bob.id)},  # 7.0 is a JSON integer too
                           token=admin_token(app, admin.id))
    assert (moved.status, moved.body["data"]["owner_id"], moved.body["data"]["role"]) == (200, bob.id, None)
    assert (await api.get(pet_path, token=ann.token)).body["data"]["role"] == "caretaker"


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_transfer_with_a_stale_if_match_is_412_and_changes_nothing(app, api):
    home = await household(app, api)
    ann, bob = home.owner, home.members["caretaker"]
    pet_path = f"/v1/pets/{home.pet['id']}"
    assert (await api.patch(pet_path, json={"breed": "Beagle"}, token=ann.token)).status == 200  # now at v2
    before = (await api.get(pet_path, token=ann.token)).body["data"]
    members = (await api.get(f"{pet_path}/members", token=ann.token)).body["data"]
    history = (await api.get(f"{pet_path}/history", token=ann.token)).body["data"]
    current = f'"v{before["version"]}"'
    for stale in ('"v1"', f"W/{current}", "v2", ""):  # stale, weak, unrecognised, empty
        refused = await api.post(f"{pet_path}/transfer", json={"user_id": bob.id}, token=ann.token,
                                 headers={"If-Match": stale})
        assert_error(refused, 412, 1009, f"POST {pet_path}/transfer", "precondition failed")
    for named in ("*", current, f"W/{current}"):  # If-None-Match naming the current version: the reverse
        refused = await api.post(f"{pet_path}/transfer", json={"user_id": bob.id}, token=ann.token,
                                 headers={"If-None-Match": named})
        assert_error(refused, 412, 1009, f"POST {pet_path}/transfer", "precondition failed")
    assert (await api.get(pet_path, token=ann.token)).body["data"] == before  # owner, version: as they were
    assert (await api.get(f"{pet_path}/members", token=ann.token)).body["data"] == members
    assert (await api.get(f"{pet_path}/history", token=ann.token)).body["data"] == history

    moved = await api.post(f"{pet_path}/transfer", json={"user_id": bob.id}, token=ann.token,
                           headers={"If-Match": current})
    assert moved.status == 200, moved.body
    assert (moved.body["data"]["owner_id"], moved.body["data"]["version"]) == (bob.id, before["version"] + 1)
    assert moved.headers["ETag"] == f'"v{before["version"] + 1}"'
    back = await api.post(f"{pet_path}/transfer", json={"user_id": ann.id}, token=bob.token, headers={"If-Match": "*"})
    assert (back.status, back.body["data"]["owner_id"], back.body["data"]["role"]) == (200, ann.id, "caretaker")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_transfer_answers_the_pet_as_its_get_does_photo_included(app, api):
    """The transfer's ETag is the pet's new version: its body must be the one GET answers under that ETag, or a
    client caching it keeps a pet without its photo and revalidates it with 304."""
    from tests.plugins.photos.images import webp

    home = await household(app, api)
    ann, bob = home.owner, home.members["caretaker"]
    pet_path = f"/v1/pets/{home.pet['id']}"
    photo = await api.request("PUT", f"{pet_path}/photo", body=webp(), token=ann.token,
                              headers={"Content-Type": "image/webp"})
    assert photo.status == 201, photo.body
    moved = await api.post(f"{pet_path}/transfer", json={"user_id": bob.id}, token=ann.token)
    assert moved.status == 200, moved.body
    assert moved.body["data"]["photo"] == photo.body["data"]
    got = await api.get(pet_path, token=ann.token)
    assert (got.status, got.headers["ETag"]) == (200, moved.headers["ETag"])
    assert moved.body == got.body  # the former owner, now a caretaker, sees the same pet, photo included
    cached = await api.get(pet_path, token=ann.token, headers={"If-None-Match": moved.headers["ETag"]})
    assert (cached.status, cached.raw) == (304, b"")
