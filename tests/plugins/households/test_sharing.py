"""Issue 14's sharing checks through HTTP on MariaDB and SQLite: roles, no-role 404s, removal, transfer."""

from __future__ import annotations

import re

import pytest

from tests.factories import assert_error, both_backends, create_pet
from tests.plugins.households.family import household, invite, person, share


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_caretaker_writes_viewer_reads_outsider_sees_nothing_and_removal_ends_access(app, api):
    home = await household(app, api)
    ann, bob, cat = home.owner, home.members["caretaker"], home.members["viewer"]
    dan = await person(app, "Dan")
    pet_path = f"/v1/pets/{home.pet['id']}"

    # Bob (caretaker) edits the pet and adds a record.
    edited = await api.patch(pet_path, json={"breed": "Beagle"}, token=bob.token)
    assert edited.status == 200, edited.body
    assert (edited.body["data"]["breed"], edited.body["data"]["role"], edited.body["data"]["version"]) == (
        "Beagle", "caretaker", 2)
    record = await api.post(f"{pet_path}/records", json={"kind": "vaccination", "date": "2024-05-01"},
                            token=bob.token)
    assert record.status == 201, record.body
    record_path = f"{pet_path}/records/{record.body['data']['id']}"

    # Cat (viewer) reads both ...
    seen = await api.get(pet_path, token=cat.token)
    assert seen.status == 200
    assert seen.body["data"] == {**edited.body["data"], "role": "viewer"}
    records = await api.get(f"{pet_path}/records", token=cat.token)
    assert (records.status, [r["id"] for r in records.body["data"]]) == (200, [record.body["data"]["id"]])
    assert (await api.get(record_path, token=cat.token)).body["data"] == record.body["data"]
    # ... but every write is 403/1004 and changes nothing.
    assert_error(await api.patch(pet_path, json={"name": "Nope"}, token=cat.token), 403, 1004, f"PATCH {pet_path}")
    assert_error(await api.delete(pet_path, token=cat.token), 403, 1004, f"DELETE {pet_path}")
    assert_error(await api.delete(record_path, token=cat.token), 403, 1004, f"DELETE {record_path}")
    assert_error(await api.post(f"{pet_path}/records", json={"kind": "weight", "date": "2024-05-02", "value": 3.0},
                                token=cat.token), 403, 1004, f"POST {pet_path}/records")
    assert (await api.get(pet_path, token=ann.token)).body["data"] == {**edited.body["data"], "role": "owner"}
    assert (await api.get(f"{pet_path}/records", token=ann.token)).body["page"]["total"] == 1

    # Dan (no role) gets 404/1002 on the pet and everything under it, exactly like a missing pet.
    missing = f"/v1/pets/{home.pet['id'] + 10_000}"
    for suffix in ("", "/records", f"/records/{record.body['data']['id']}", "/members", "/history"):
        assert_error(await api.get(pet_path + suffix, token=dan.token), 404, 1002, f"GET {pet_path}{suffix}",
                     "the resource is not found")
        assert_error(await api.get(missing + suffix, token=dan.token), 404, 1002, f"GET {missing}{suffix}",
                     "the resource is not found")
    assert_error(await api.patch(pet_path, json={"name": "Mine"}, token=dan.token), 404, 1002, f"PATCH {pet_path}")
    listed = await api.get("/v1/pets", token=dan.token)
    assert (listed.status, listed.body["data"], listed.body["page"]["total"]) == (200, [], 0)

    # The owner removes Bob: his very next request is a 404, like Dan's.
    removed = await api.delete(f"{pet_path}/members/{bob.id}", token=ann.token)
    assert removed.status == 200, removed.body
    assert removed.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.get(pet_path, token=bob.token), 404, 1002, f"GET {pet_path}")
    assert_error(await api.get(record_path, token=bob.token), 404, 1002, f"GET {record_path}")
    assert_error(await api.patch(pet_path, json={"name": "Back"}, token=bob.token), 404, 1002, f"PATCH {pet_path}")
    assert (await api.get("/v1/pets", token=bob.token)).body["data"] == []


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_the_pet_list_shows_owned_and_shared_pets_with_the_callers_role(app, api):
    home = await household(app, api)
    bob = home.members["caretaker"]
    own = await create_pet(api, bob.token, name="Bobs")
    listed = await api.get("/v1/pets", token=bob.token)
    assert listed.status == 200
    assert [(p["id"], p["role"]) for p in listed.body["data"]] == [(home.pet["id"], "caretaker"), (own["id"], "owner")]
    for role, expected in (("owner", [own["id"]]), ("caretaker", [home.pet["id"]]), ("viewer", [])):
        filtered = await api.get(f"/v1/pets?role={role}", token=bob.token)
        assert ([p["id"] for p in filtered.body["data"]], filtered.body["page"]["total"]) == (expected, len(expected))


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_transfer_makes_the_member_owner_and_the_former_owner_a_caretaker(app, api):
    home = await household(app, api)
    ann, bob, cat = home.owner, home.members["caretaker"], home.members["viewer"]
    pet_path = f"/v1/pets/{home.pet['id']}"
    before = (await api.get(pet_path, token=ann.token)).body["data"]

    moved = await api.post(f"{pet_path}/transfer", json={"user_id": bob.id}, token=ann.token)
    assert moved.status == 200, moved.body
    assert moved.body["data"] == {**before, "owner_id": bob.id, "role": "caretaker", "version": before["version"] + 1,
                                  "updated_at": moved.body["data"]["updated_at"]}
    assert moved.headers["ETag"] == f'"v{before["version"] + 1}"'
    members = await api.get(f"{pet_path}/members", token=cat.token)
    assert [(m["user_id"], m["nickname"], m["role"]) for m in members.body["data"]] == [
        (bob.id, "Bob", "owner"), (ann.id, "Ann", "caretaker"), (cat.id, "Cat", "viewer")]

    # The former owner is a caretaker: writes still, but cannot share, change roles, transfer or delete.
    assert (await api.patch(pet_path, json={"breed": "Mixed"}, token=ann.token)).status == 200
    request = f"POST {pet_path}/invitations"
    assert_error(await api.post(f"{pet_path}/invitations", json={"email": "eve@example.com", "role": "viewer"},
                                token=ann.token), 403, 1004, request)
    assert_error(await api.patch(f"{pet_path}/members/{cat.id}", json={"role": "caretaker"}, token=ann.token),
                 403, 1004, f"PATCH {pet_path}/members/{cat.id}")
    assert_error(await api.post(f"{pet_path}/transfer", json={"user_id": ann.id}, token=ann.token), 403, 1004,
                 f"POST {pet_path}/transfer")
    assert_error(await api.delete(pet_path, token=ann.token), 403, 1004, f"DELETE {pet_path}")

    # The new owner can share and delete.
    eve = await person(app, "Eve")
    await share(api, bob, home.pet["id"], eve, "viewer")
    assert (await api.get(pet_path, token=eve.token)).body["data"]["role"] == "viewer"
    deleted = await api.delete(pet_path, token=bob.token)
    assert deleted.status == 200, deleted.body
    for someone in (ann, bob, cat, eve):
        assert_error(await api.get(pet_path, token=someone.token), 404, 1002, f"GET {pet_path}")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_invitation_accepted_later_by_a_new_account_shares_the_pet(app, api):
    owner = await person(app, "Ann")
    pet = await create_pet(api, owner.token)
    invitation = await invite(api, owner, pet["id"], "  Later.User@Example.COM ", "viewer")
    assert invitation["email"] == "later.user@example.com"
    registered = await api.post("/v1/users", json={"email": "later.user@example.com", "password": "long-password-1",
                                                   "nickname": "Late"})
    assert registered.status == 201, registered.body
    token = await api.token("later.user@example.com", "long-password-1")
    # Until the account proves the address is its own, the invitation is neither shown nor answerable.
    unverified = "verify your e-mail address first (POST /v1/users/me/email-verification) to answer invitations"
    hidden = await api.get("/v1/invitations", token=token)
    assert (hidden.status, hidden.body["data"], hidden.body["page"]["total"]) == (200, [], 0)
    for answer in ("accept", "decline"):
        path = f"/v1/invitations/{invitation['id']}/{answer}"
        assert_error(await api.post(path, token=token), 403, 1004, f"POST {path}", unverified)
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).status == 404  # nothing was joined
    [(body,)] = await app.db.fetch_all("SELECT body FROM outbox WHERE recipient = 'later.user@example.com'")
    confirmed = await api.post("/v1/email-verifications/confirm",
                               json={"token": re.search(r"[:：] ?([A-Za-z0-9_-]{43,})\s*$", body, re.M).group(1)})
    assert confirmed.status == 200, confirmed.body
    mine = await api.get("/v1/invitations", token=token)
    assert mine.status == 200
    assert mine.body == {"code": 200, "message": "ok", "data": [invitation],
                         "page": {"limit": 20, "offset": 0, "total": 1, "next_cursor": None}}
    accepted = await api.post(f"/v1/invitations/{invitation['id']}/accept", token=token)
    assert accepted.body == {"code": 200, "message": "ok", "data": {**invitation, "status": "accepted"}}
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"]["role"] == "viewer"
    assert (await api.get("/v1/invitations", token=token)).body["data"] == []
