"""Sharing under concurrent requests on MariaDB and SQLite: one accept wins, and a pet keeps exactly one owner."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.factories import both_backends, create_pet
from tests.plugins.households.family import household, invite, person


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_accepts_of_one_invitation_make_one_member(app, api):
    ann, bob = await person(app, "Ann"), await person(app, "Bob")
    pet = await create_pet(api, ann.token)
    invitation = await invite(api, ann, pet["id"], bob.email, "caretaker")
    path = f"/v1/invitations/{invitation['id']}/accept"
    answers = await asyncio.gather(*(api.post(path, token=bob.token) for _ in range(10)))
    outcomes = Counter((a.status, a.body.get("error_code")) for a in answers)
    assert outcomes == {(200, None): 1, (409, 2301): 9}, outcomes
    rows = await app.db.fetch_all("SELECT user_id, role FROM pet_members WHERE pet_id = %s ORDER BY user_id",
                                  (pet["id"],))
    assert rows == [(ann.id, "owner"), (bob.id, "caretaker")]
    shared = await app.db.fetch_all("SELECT id FROM pet_history WHERE pet_id = %s AND action = 'shared'",
                                    (pet["id"],))
    assert len(shared) == 1


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_transfer_racing_the_new_owners_leaving_leaves_exactly_one_owner(app, api):
    for _ in range(3):
        home = await household(app, api)
        ann, bob = home.owner, home.members["caretaker"]
        pet_path = f"/v1/pets/{home.pet['id']}"
        transfer, leave = await asyncio.gather(
            api.post(f"{pet_path}/transfer", json={"user_id": bob.id}, token=ann.token),
            api.delete(f"{pet_path}/members/{bob.id}", token=bob.token))
        # Either the transfer came first (Bob owns the pet and may not leave) or the leaving did (no member to
        # transfer to); never both, never neither.
        outcome = (transfer.status, transfer.body.get("error_code"), leave.status, leave.body.get("error_code"))
        assert outcome in {(200, None, 409, 2305), (409, 2307, 200, None)}, (transfer.body, leave.body)
        owners = await app.db.fetch_all("SELECT user_id FROM pet_members WHERE pet_id = %s AND role = 'owner'",
                                        (home.pet["id"],))
        owner_id = await app.db.fetch_one("SELECT owner_id FROM pets WHERE id = %s", (home.pet["id"],))
        assert len(owners) == 1 and owner_id is not None and owners[0][0] == owner_id[0]
        assert owner_id[0] == (bob.id if transfer.status == 200 else ann.id)
