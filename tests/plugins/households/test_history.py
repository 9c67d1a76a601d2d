"""A pet's history through HTTP on MariaDB and SQLite: each step with its actor and changed fields, newest first,
nothing from other pets, never an e-mail; and written in the transaction of the change it records."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import PASSWORD, assert_error, both_backends, create_pet
from tests.plugins.households.family import household, invite, person


def steps(response) -> list[tuple]:
    return [(e["actor"]["nickname"], e["type"], e["action"], e["changed"]) for e in response.body["data"]]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_history_shows_each_step_with_actor_and_changes_newest_first(app, api):
    home = await household(app, api)
    ann, bob, cat = home.owner, home.members["caretaker"], home.members["viewer"]
    pet_id = home.pet["id"]
    pet_path = f"/v1/pets/{pet_id}"
    other = await create_pet(api, ann.token, name="Other")  # its changes must not show
    assert (await api.patch(f"/v1/pets/{other['id']}", json={"name": "Else"}, token=ann.token)).status == 200

    assert (await api.patch(pet_path, json={"breed": "Beagle", "sex": "male"}, token=bob.token)).status == 200
    record = await api.post(f"{pet_path}/records", json={"kind": "weight", "date": "2024-05-01", "value": 12.5},
                            token=bob.token)
    assert record.status == 201
    assert (await api.patch(f"{pet_path}/members/{cat.id}", json={"role": "caretaker"}, token=ann.token)).status == 200
    assert (await api.delete(f"{pet_path}/records/{record.body['data']['id']}", token=cat.token)).status == 200
    assert (await api.delete(f"{pet_path}/members/{cat.id}", token=ann.token)).status == 200
    assert (await api.post(f"{pet_path}/transfer", json={"user_id": bob.id}, token=ann.token)).status == 200
    assert (await api.delete(f"{pet_path}/members/{ann.id}", token=ann.token)).status == 200

    history = await api.get(f"{pet_path}/history?limit=100", token=bob.token)
    assert history.status == 200, history.body
    assert steps(history) == [
        ("Ann", "member", "left", {"role": ["caretaker", None]}),
        ("Ann", "member", "transferred", {"owner_id": [ann.id, bob.id]}),
        ("Ann", "member", "removed", {"role": ["caretaker", None]}),
        ("Cat", "record", "deleted", {}),
        ("Ann", "member", "role_changed", {"role": ["viewer", "caretaker"]}),
        ("Bob", "record", "created", {}),
        ("Bob", "pet", "updated", {"breed": [None, "Beagle"], "sex": ["unknown", "male"]}),
        ("Cat", "member", "shared", {"role": [None, "viewer"]}),
        ("Ann", "invitation", "invited", {"role": [None, "viewer"]}),
        ("Bob", "member", "shared", {"role": [None, "caretaker"]}),
        ("Ann", "invitation", "invited", {"role": [None, "caretaker"]}),
        ("Ann", "pet", "created", {}),
    ]
    entries = history.body["data"]
    assert history.body["page"] == {"limit": 100, "offset": 0, "total": len(entries), "next_cursor": None}
    assert [e["actor"]["user_id"] for e in entries[:3]] == [ann.id, ann.id, ann.id]
    assert entries[0]["object_id"] == ann.id and entries[3]["object_id"] == record.body["data"]["id"]
    times = [dt.datetime.fromisoformat(e["at"]) for e in entries]
    assert times == sorted(times, reverse=True)
    assert all(set(e) == {"id", "at", "actor", "type", "action", "object_id", "changed"} for e in entries)
    assert b"@" not in history.raw  # no e-mail address, the invitees' included
    assert "Else" not in history.raw.decode() and "Other" not in history.raw.decode()

    page = await api.get(f"{pet_path}/history?limit=2&offset=1", token=bob.token)
    assert (page.body["data"], page.body["page"]) == (entries[1:3], {
        "limit": 2, "offset": 1, "total": len(entries), "next_cursor": page.body["page"]["next_cursor"]})
    assert page.body["page"]["next_cursor"] is not None  # offset pages hand over to the cursor too
    for gone in (ann, cat):  # no role any more: 404 like any stranger
        assert_error(await api.get(f"{pet_path}/history", token=gone.token), 404, 1002, f"GET {pet_path}/history")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_refused_write_leaves_no_history(app, api):
    ann = await person(app, "Ann")
    pet = await create_pet(api, ann.token)
    path = f"/v1/pets/{pet['id']}"
    before = await api.get(f"{path}/history", token=ann.token)
    stale = await api.patch(path, json={"name": "Stale"}, token=ann.token, headers={"If-Match": '"v99"'})
    assert stale.status == 412
    bob = await person(app, "Bob")
    invitation = await invite(api, ann, pet["id"], bob.email, "viewer")
    await app.db.execute("UPDATE invitations SET expires_at = created_at WHERE id = %s", (invitation["id"],))
    assert (await api.post(f"/v1/invitations/{invitation['id']}/accept", token=bob.token)).status == 410
    after = await api.get(f"{path}/history", token=ann.token)
    assert steps(after) == [("Ann", "invitation", "invited", {"role": [None, "viewer"]}), *steps(before)]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_withdrawals_replacements_and_a_deleted_members_leave_keep_the_role_and_instants_their_z(app, api):
    """An invitation withdrawn by hand or replaced by a new one to the same address, and a member leaving by
    deleting the account, each record the role, as their ordinary counterparts do; a changed instant is written
    as the API writes instants (UTC, with Z)."""
    home = await household(app, api)
    ann, bob = home.owner, home.members["caretaker"]
    pet_path = f"/v1/pets/{home.pet['id']}"
    first = await invite(api, ann, home.pet["id"], "someone@example.org", "caretaker")
    second = await invite(api, ann, home.pet["id"], "someone@example.org", "viewer")  # replaces the first
    withdrawn = await api.delete(f"{pet_path}/invitations/{second['id']}", token=ann.token)
    assert (withdrawn.status, withdrawn.body["data"]["status"]) == (200, "withdrawn")
    record = await api.post(f"{pet_path}/records", json={"kind": "weight", "date": "2024-05-01", "value": 12.5},
                            token=ann.token)
    done = await api.patch(f"{pet_path}/records/{record.body['data']['id']}",
                           json={"completed_at": "2024-05-02T10:30:00Z"}, token=ann.token)
    assert done.status == 200, done.body
    gone = await api.delete("/v1/users/me", json={"password": PASSWORD}, token=bob.token)
    assert gone.body == {"code": 200, "data": None, "message": "ok"}

    history = await api.get(f"{pet_path}/history?limit=100", token=ann.token)
    assert history.status == 200, history.body
    assert [(e["type"], e["action"], e["object_id"], e["changed"]) for e in history.body["data"][:6]] == [
        ("member", "left", bob.id, {"role": ["caretaker", None]}),
        ("record", "updated", record.body["data"]["id"], {"completed_at": [None, "2024-05-02T10:30:00Z"]}),
        ("record", "created", record.body["data"]["id"], {}),
        ("invitation", "withdrawn", second["id"], {"role": ["viewer", None]}),
        ("invitation", "invited", second["id"], {"role": [None, "viewer"]}),
        ("invitation", "withdrawn", first["id"], {"role": ["caretaker", None]}),
    ]
