"""GET /v1/reminders: open due items of every pet the caller is a member of, overdue first then by date."""

import pytest

from tests.factories import assert_error, both_backends, create_pet, user_with_token
from tests.plugins.reminders.helpers import day, due_item, share


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_overdue_and_upcoming_items_of_owned_and_shared_pets_in_order(api, app):
    alice, alice_token = await user_with_token(app, verified=True)
    bob, bob_token = await user_with_token(app)
    _, carol_token = await user_with_token(app)
    rex = await create_pet(api, alice_token, name="Rex")
    mia = await create_pet(api, bob_token, name="Mia", species="cat")
    zed = await create_pet(api, carol_token, name="Zed")
    await share(api, mia["id"], (bob, bob_token), (alice, alice_token), "viewer")  # reads only: still reminded

    rex_overdue = await due_item(api, alice_token, rex["id"], -10)
    rex_soon = await due_item(api, alice_token, rex["id"], 5, kind="medication", note="wormer")
    rex_later = await due_item(api, alice_token, rex["id"], 40)
    await due_item(api, alice_token, rex["id"], -3, done=True)  # completed: never a reminder
    await due_item(api, alice_token, rex["id"], None)  # no due date
    mia_overdue = await due_item(api, bob_token, mia["id"], -1, kind="vet_visit")
    mia_soon = await due_item(api, bob_token, mia["id"], 5)
    mia_today = await due_item(api, bob_token, mia["id"], 0)
    mia_last = await due_item(api, bob_token, mia["id"], 30)
    await due_item(api, carol_token, zed["id"], 1)  # not alice's

    listed = await api.get("/v1/reminders", token=alice_token)
    assert listed.status == 200, listed.body
    assert listed.body["page"] == {"limit": 20, "offset": 0, "total": 6}
    expected = [(rex_overdue, rex, True), (mia_overdue, mia, True), (mia_today, mia, False), (rex_soon, rex, False),
                (mia_soon, mia, False), (mia_last, mia, False)]
    assert listed.body["data"] == [{**record, "pet": {"id": pet["id"], "name": pet["name"]}, "overdue": overdue}
                                   for record, pet, overdue in expected]
    assert [r["due_date"] for r in listed.body["data"]] == [day(-10), day(-1), day(0), day(5), day(5), day(30)]

    wider = await api.get("/v1/reminders?within_days=366", token=alice_token)
    assert [r["id"] for r in wider.body["data"]] == [r["id"] for r, _, _ in expected] + [rex_later["id"]]
    narrow = await api.get("/v1/reminders?within_days=1", token=alice_token)
    assert [r["id"] for r in narrow.body["data"]] == [rex_overdue["id"], mia_overdue["id"], mia_today["id"]]
    page = await api.get("/v1/reminders?limit=2&offset=2", token=alice_token)
    assert [r["id"] for r in page.body["data"]] == [mia_today["id"], rex_soon["id"]]
    assert page.body["page"] == {"limit": 2, "offset": 2, "total": 6}
    past_the_end = await api.get("/v1/reminders?offset=50", token=alice_token)
    assert (past_the_end.body["data"], past_the_end.body["page"]["total"]) == ([], 6)

    bobs = await api.get("/v1/reminders", token=bob_token)  # the owner of Mia: not Rex's
    assert [r["id"] for r in bobs.body["data"]] == [mia_overdue["id"], mia_today["id"], mia_soon["id"],
                                                     mia_last["id"]]

    # Completing an item (the owner of Mia) removes it from everyone's reminders; reopening brings it back.
    path = f"/v1/pets/{mia['id']}/records/{mia_overdue['id']}"
    assert (await api.patch(path, token=bob_token, json={"completed_at": "2025-01-01T08:00:00Z"})).status == 200
    after = await api.get("/v1/reminders", token=alice_token)
    assert mia_overdue["id"] not in [r["id"] for r in after.body["data"]]
    assert after.body["page"]["total"] == 5
    assert (await api.patch(path, token=bob_token, json={"completed_at": None})).status == 200
    assert (await api.get("/v1/reminders", token=alice_token)).body["page"]["total"] == 6


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_reminders_are_personal_even_for_an_admin(api, app):
    _, owner_token = await user_with_token(app)
    _, admin_token = await user_with_token(app, role="admin")
    pet = await create_pet(api, owner_token)
    await due_item(api, owner_token, pet["id"], -1)
    assert (await api.get(f"/v1/pets/{pet['id']}/records", token=admin_token)).body["page"]["total"] == 1
    listed = await api.get("/v1/reminders", token=admin_token)
    assert listed.body == {"code": 200, "data": [], "message": "ok", "page": {"limit": 20, "offset": 0, "total": 0}}
    own = await create_pet(api, admin_token, name="Admin's")
    item = await due_item(api, admin_token, own["id"], 2)
    assert [r["id"] for r in (await api.get("/v1/reminders", token=admin_token)).body["data"]] == [item["id"]]


@pytest.mark.parametrize("query", ["within_days=0", "within_days=367", "within_days=ten", "within_days=1.5",
                                   "within_days=+5"])
@pytest.mark.gen_test
async def test_bad_within_days_is_named(api, app, query):
    _, token = await user_with_token(app)
    response = await api.get(f"/v1/reminders?{query}", token=token)
    assert_error(response, 400, 1001, "GET /v1/reminders")
    assert [e["field"] for e in response.body["errors"]] == ["within_days"]


@pytest.mark.gen_test
async def test_reminders_need_a_token_with_pets_read(api, app):
    user, _ = await user_with_token(app)
    assert_error(await api.get("/v1/reminders"), 401, 1003, "GET /v1/reminders")
    no_pets = app.tokens.issue(user.id, ["users:me"]).token
    assert_error(await api.get("/v1/reminders", token=no_pets), 403, 1004, "GET /v1/reminders")
