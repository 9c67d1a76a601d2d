"""Invitations through HTTP on MariaDB and SQLite: no account enumeration, and every refused answer (wrong user,
twice, expired, withdrawn, already a member) with its documented code and nothing changed in the tables."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from server.app import PetAPI
from tests.factories import assert_error, both_backends, create_pet
from tests.plugins.households.family import Person, admin_token, household, invite, person

INVITATION_FIELDS = {"id", "pet_id", "pet_name", "email", "role", "status", "invited_by", "created_at", "expires_at"}
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"


async def tables(app: PetAPI) -> tuple[list[Any], list[Any], list[Any]]:
    """Every row of invitations, pet_members and pet_history: what a refused request must leave as it was."""
    return (await app.db.fetch_all("SELECT id, pet_id, email, role, status, answered_at FROM invitations ORDER BY id"),
            await app.db.fetch_all("SELECT pet_id, user_id, role, since FROM pet_members ORDER BY pet_id, user_id"),
            await app.db.fetch_all("SELECT id FROM pet_history ORDER BY id"))


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_invitation_answers_the_same_for_a_known_and_an_unknown_address(app, api, caplog):
    await app.sync_sequencer.stop()  # its passes after each commit are not the requests' statements
    ann = await person(app, "Ann")
    known = await person(app, "Bob")
    pet = await create_pet(api, ann.token)
    path = f"/v1/pets/{pet['id']}/invitations"
    answers, statements = [], []
    for email in (known.email, "nobody-here@example.com"):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="pet_api.db"):
            answers.append(await api.post(path, json={"email": email, "role": "viewer"}, token=ann.token))
        statements.append([r.sql for r in caplog.records if hasattr(r, "sql") and "revocations" not in r.sql])
    for answer, email in zip(answers, (known.email, "nobody-here@example.com"), strict=True):
        assert answer.status == 201, answer.body
        assert set(answer.body) == {"code", "data", "message"} and answer.body["code"] == 201
        data = answer.body["data"]
        assert set(data) == INVITATION_FIELDS
        assert (data["pet_id"], data["pet_name"], data["email"], data["role"], data["status"], data["invited_by"]) == (
            pet["id"], pet["name"], email, "viewer", "pending", ann.id)
        assert re.fullmatch(TIMESTAMP, data["created_at"]) and re.fullmatch(TIMESTAMP, data["expires_at"])
    assert sorted(k for k, _ in answers[0].headers.get_all() if k != "Date" and k != "X-Request-Id") == sorted(
        k for k, _ in answers[1].headers.get_all() if k != "Date" and k != "X-Request-Id")
    # Comparable time without timing the CI machine: both run the very same statements, and none reads users.
    assert statements[0] == statements[1] and statements[0], statements
    assert not any("users" in sql for sql in statements[0]), statements[0]


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"sql_echo": True}


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_accepting_someone_elses_twice_expired_or_withdrawn_changes_nothing(app, api):
    ann, bob, eve = await person(app, "Ann"), await person(app, "Bob"), await person(app, "Eve")
    pet = await create_pet(api, ann.token)
    invitation = await invite(api, ann, pet["id"], bob.email, "caretaker")
    accept = f"/v1/invitations/{invitation['id']}/accept"
    decline = f"/v1/invitations/{invitation['id']}/decline"

    # Someone else (the owner and an admin included) cannot see, accept or decline it: 404, as if absent.
    admin = await person(app, "Root", role="admin")
    before = await tables(app)
    for someone in (eve.token, ann.token, admin_token(app, admin.id)):
        assert_error(await api.post(accept, token=someone), 404, 1002, f"POST {accept}", "the resource is not found")
        assert_error(await api.post(decline, token=someone), 404, 1002, f"POST {decline}")
        assert (await api.get("/v1/invitations", token=someone)).body["data"] == []
    missing = f"/v1/invitations/{invitation['id'] + 1000}/accept"
    assert_error(await api.post(missing, token=bob.token), 404, 1002, f"POST {missing}", "the resource is not found")
    assert await tables(app) == before

    # Bob accepts once; a second accept or a decline afterwards is 409/2301 and changes nothing.
    accepted = await api.post(accept, token=bob.token)
    assert accepted.body == {"code": 200, "message": "ok", "data": {**invitation, "status": "accepted"}}
    after_accept = await tables(app)
    assert after_accept != before
    assert_error(await api.post(accept, token=bob.token), 409, 2301, f"POST {accept}",
                 "invitation is no longer pending")
    assert_error(await api.post(decline, token=bob.token), 409, 2301, f"POST {decline}")
    assert await tables(app) == after_accept

    # Expired (past expires_at): 410/2302, and it is no longer listed to the invitee.
    late = await invite(api, ann, pet["id"], eve.email, "viewer")
    assert [i["id"] for i in (await api.get("/v1/invitations", token=eve.token)).body["data"]] == [late["id"]]
    await app.db.execute("UPDATE invitations SET expires_at = created_at WHERE id = %s", (late["id"],))
    before = await tables(app)
    late_accept = f"/v1/invitations/{late['id']}/accept"
    assert_error(await api.post(late_accept, token=eve.token), 410, 2302, f"POST {late_accept}",
                 "invitation has expired")
    assert await tables(app) == before
    assert (await api.get("/v1/invitations", token=eve.token)).body["data"] == []
    assert_error(await api.get(f"/v1/pets/{pet['id']}", token=eve.token), 404, 1002, f"GET /v1/pets/{pet['id']}")
    listed = await api.get(f"/v1/pets/{pet['id']}/invitations", token=ann.token)
    assert [(i["id"], i["status"]) for i in listed.body["data"]] == [(late["id"], "expired")]

    # Withdrawn by the owner: 409/2301 for the invitee, and the owner's list no longer shows it.
    fresh = await invite(api, ann, pet["id"], eve.email, "viewer")
    withdrawn = await api.delete(f"/v1/pets/{pet['id']}/invitations/{fresh['id']}", token=ann.token)
    assert withdrawn.body == {"code": 200, "message": "ok", "data": {**fresh, "status": "withdrawn"}}
    before = await tables(app)
    fresh_accept = f"/v1/invitations/{fresh['id']}/accept"
    assert_error(await api.post(fresh_accept, token=eve.token), 409, 2301, f"POST {fresh_accept}")
    again = f"/v1/pets/{pet['id']}/invitations/{fresh['id']}"
    assert_error(await api.delete(again, token=ann.token), 409, 2301, f"DELETE {again}")
    assert await tables(app) == before


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_the_owner_withdraws_an_expired_invitation_to_clear_it_from_the_list(app, api):
    ann, bob = await person(app, "Ann"), await person(app, "Bob")
    pet = await create_pet(api, ann.token)
    late = await invite(api, ann, pet["id"], bob.email, "viewer")
    await app.db.execute("UPDATE invitations SET expires_at = created_at WHERE id = %s", (late["id"],))
    path = f"/v1/pets/{pet['id']}/invitations"
    assert [(i["id"], i["status"]) for i in (await api.get(path, token=ann.token)).body["data"]] == [
        (late["id"], "expired")]

    withdrawn = await api.delete(f"{path}/{late['id']}", token=ann.token)
    assert (withdrawn.status, withdrawn.body) == (200, {"code": 200, "message": "ok",
                                                       "data": {**late, "status": "withdrawn",
                                                                "expires_at": late["created_at"]}})
    listed = await api.get(path, token=ann.token)
    assert (listed.status, listed.body["data"]) == (200, [])
    accept = f"/v1/invitations/{late['id']}/accept"
    assert_error(await api.post(accept, token=bob.token), 409, 2301, f"POST {accept}")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_declining_keeps_the_invitee_out(app, api):
    ann, bob = await person(app, "Ann"), await person(app, "Bob")
    pet = await create_pet(api, ann.token)
    invitation = await invite(api, ann, pet["id"], bob.email, "viewer")
    declined = await api.post(f"/v1/invitations/{invitation['id']}/decline", token=bob.token)
    assert declined.body == {"code": 200, "message": "ok", "data": {**invitation, "status": "declined"}}
    assert_error(await api.get(f"/v1/pets/{pet['id']}", token=bob.token), 404, 1002, f"GET /v1/pets/{pet['id']}")
    assert (await api.get(f"/v1/pets/{pet['id']}/invitations", token=ann.token)).body["data"] == []
    accept = f"/v1/invitations/{invitation['id']}/accept"
    assert_error(await api.post(accept, token=bob.token), 409, 2301, f"POST {accept}")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_member_accepting_another_invitation_gets_409_and_keeps_the_role(app, api):
    home = await household(app, api)
    cat: Person = home.members["viewer"]
    again = await invite(api, home.owner, home.pet["id"], cat.email, "caretaker")
    before = await tables(app)
    accept = f"/v1/invitations/{again['id']}/accept"
    assert_error(await api.post(accept, token=cat.token), 409, 2303, f"POST {accept}", "already a member of this pet")
    assert await tables(app) == before
    assert (await api.get(f"/v1/pets/{home.pet['id']}", token=cat.token)).body["data"]["role"] == "viewer"


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_new_invitation_to_the_same_address_replaces_the_pending_one(app, api):
    ann, bob = await person(app, "Ann"), await person(app, "Bob")
    pet = await create_pet(api, ann.token)
    first = await invite(api, ann, pet["id"], bob.email, "viewer")
    second = await invite(api, ann, pet["id"], bob.email.upper(), "caretaker")
    assert second["email"] == bob.email
    assert [i["id"] for i in (await api.get(f"/v1/pets/{pet['id']}/invitations", token=ann.token)).body["data"]] == [
        second["id"]]
    assert [i["id"] for i in (await api.get("/v1/invitations", token=bob.token)).body["data"]] == [second["id"]]
    stale = f"/v1/invitations/{first['id']}/accept"
    assert_error(await api.post(stale, token=bob.token), 409, 2301, f"POST {stale}")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_invitation_names_a_shared_role_and_an_address(app, api):
    ann = await person(app, "Ann")
    pet = await create_pet(api, ann.token)
    path = f"/v1/pets/{pet['id']}/invitations"
    for body, field in (({"email": "x@example.com", "role": "owner"}, "role"),
                        ({"email": "x@example.com"}, "role"),
                        ({"email": "not-an-address", "role": "viewer"}, "email"),
                        ({"email": "x@example.com", "role": "viewer", "pet_id": 1}, "pet_id")):
        refused = await api.post(path, json=body, token=ann.token)
        assert_error(refused, 400, 1001, f"POST {path}")
        assert field in [e["field"] for e in refused.body["errors"]], refused.body
    assert (await api.get(path, token=ann.token)).body["data"] == []


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_address_matches_exactly_apart_from_case(app, api):
    """MariaDB's usual collation equates 'jose' and 'josé': an invitation must not reach the other address."""
    ann = await person(app, "Ann")
    pet = await create_pet(api, ann.token)
    await invite(api, ann, pet["id"], "josé@example.com", "viewer")
    jose = await person(app, "jose")
    await app.db.execute("UPDATE users SET email = 'jose@example.com' WHERE id = %s", (jose.id,))
    assert (await api.get("/v1/invitations", token=jose.token)).body["data"] == []
