"""PATCH /v1/pets/{id}/records/{record_id}: note, value, due date and completion, validated like pets' PATCH, with
If-Match (412/1009) and the record's ETag."""

import asyncio
import datetime as dt
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from server.changes import Change
from tests.factories import Api, assert_error, both_backends, create_pet, user_with_token
from tests.plugins.records.test_handlers import add_record
from tests.plugins.reminders.helpers import share


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_due_item_is_set_edited_completed_and_reopened(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    created = await api.post(f"/v1/pets/{pet['id']}/records", token=token,
                             json={"kind": "vaccination", "date": "2024-03-01", "due_date": "2025-03-01"})
    assert created.status == 201 and created.headers["ETag"] == '"v1"'
    record = created.body["data"]
    assert (record["due_date"], record["completed_at"], record["version"]) == ("2025-03-01", None, 1)
    assert record["updated_at"] == record["created_at"]
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    read = await api.get(path, token=token)
    assert (read.body["data"], read.headers["ETag"]) == (record, '"v1"')

    edited = await api.patch(path, token=token, json={"note": "rabies booster", "value": 1.5,
                                                      "due_date": "2025-04-01"}, headers={"If-Match": '"v1"'})
    assert edited.status == 200, edited.body
    assert edited.headers["ETag"] == '"v2"'
    after = edited.body["data"]
    assert {k: after[k] for k in ("note", "value", "due_date", "completed_at", "version")} == {
        "note": "rabies booster", "value": 1.5, "due_date": "2025-04-01", "completed_at": None, "version": 2}
    assert {k: after[k] for k in ("id", "pet_id", "kind", "date", "created_at")} == {
        k: record[k] for k in ("id", "pet_id", "kind", "date", "created_at")}
    assert after["updated_at"] > record["updated_at"]

    done = await api.patch(path, token=token, json={"completed_at": "2025-03-30T10:15:00+02:00"})
    assert done.status == 200, done.body
    assert (done.body["data"]["completed_at"], done.body["data"]["version"]) == ("2025-03-30T08:15:00Z", 3)
    assert (await api.get(path, token=token)).body["data"] == done.body["data"]
    reopened = await api.patch(path, token=token, json={"completed_at": None, "note": None, "value": None})
    assert {k: reopened.body["data"][k] for k in ("completed_at", "note", "value", "due_date")} == {
        "completed_at": None, "note": None, "value": None, "due_date": "2025-04-01"}
    cleared = await api.patch(path, token=token, json={"due_date": None})
    assert cleared.body["data"]["due_date"] is None and cleared.headers["ETag"] == '"v5"'


@pytest.mark.gen_test
async def test_a_leap_second_counts_as_the_second_before_it(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    done = await api.patch(path, token=token, json={"completed_at": "2016-12-31T23:59:60.5Z"})
    assert (done.status, done.body["data"]["completed_at"]) == (200, "2016-12-31T23:59:59.500000Z")


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_stale_if_match_is_412_and_writes_nothing(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"], due_date="2025-01-01")
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    assert (await api.patch(path, token=token, json={"note": "one"}, headers={"If-Match": '"v1"'})).status == 200
    for tag in ('"v1"', 'W/"v1"', '"v3"', "garbage", '"1"', '"v002"', '"v02"', 'w/"v2"'):  # to the character
        stale = await api.patch(path, token=token, json={"note": "late"}, headers={"If-Match": tag})
        assert_error(stale, 412, 1009, f"PATCH {path}")
    assert (await api.get(path, token=token)).body["data"]["note"] == "one"
    assert (await api.patch(path, token=token, json={"note": "two"}, headers={"If-Match": '"v1", "v2"'})).status == 200
    assert (await api.patch(path, token=token, json={"note": "three"}, headers={"If-Match": "*"})).status == 200
    missing = f"/v1/pets/{pet['id']}/records/{record['id'] + 1000}"
    assert_error(await api.patch(missing, token=token, json={"note": "x"}, headers={"If-Match": '"v1"'}), 404, 1002,
                 f"PATCH {missing}")


@pytest.mark.parametrize("body, fields", [
    ({}, ["body"]),
    ({"kind": "weight"}, ["kind"]),
    ({"date": "2024-01-01"}, ["date"]),
    ({"id": 3, "version": 2, "pet_id": 1}, ["id", "pet_id", "version"]),
    ({"created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}, ["created_at", "updated_at"]),
    ({"note": "n" * 2001}, ["note"]),
    ({"value": "1"}, ["value"]),
    ({"due_date": "2024-02-30"}, ["due_date"]),
    ({"due_date": 20240101}, ["due_date"]),
    ({"completed_at": "2024-01-01"}, ["completed_at"]),
    ({"completed_at": "2024-01-01T10:00:00"}, ["completed_at"]),  # no zone: which day was it?
    ({"completed_at": 1704103200}, ["completed_at"]),
    ({"completed_at": "2024-13-01T10:00:00Z", "note": 5}, ["completed_at", "note"]),
    ({"completed_at": "2024-01-01T12:00:61Z"}, ["completed_at"]),  # only :60, a leap second, is past :59
    ({"completed_at": "2024-01-01T12:00:99Z"}, ["completed_at"]),
])
@pytest.mark.gen_test
async def test_invalid_patches_name_every_field_and_change_nothing(api, app, body, fields):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    response = await api.patch(path, token=token, json=body)
    assert_error(response, 400, 1001, f"PATCH {path}")
    assert sorted(e["field"] for e in response.body["errors"]) == fields
    assert (await api.get(path, token=token)).body["data"] == record


@pytest.mark.parametrize("offset", ["+05:99", "-05:75", "+00:60", "+23:99", "+24:00", "-99:00"])
@pytest.mark.gen_test
async def test_a_zone_offset_outside_rfc_3339_is_400_naming_completed_at(api, app, offset):
    """RFC 3339 5.6: an offset's hours are 00-23 and its minutes 00-59; +05:99 is no offset, not 6h39m."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    response = await api.patch(path, token=token, json={"completed_at": f"2024-12-07T10:00:00{offset}"})
    assert response.status == 400
    assert response.body == {"error_code": 1001, "message": "invalid parameter", "request": f"PATCH {path}",
                             "errors": [{"field": "completed_at", "message": "must be a valid date and time"}]}
    assert (await api.get(path, token=token)).body["data"] == record


def _in(delta: dt.timedelta) -> str:
    return (dt.datetime.now(dt.UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("completed_at, message", [
    ("0001-01-01T00:00:00Z", "must not be before 1900-01-01"),
    ("1899-12-31T23:59:59Z", "must not be before 1900-01-01"),
    ("1900-01-01T00:30:00+01:00", "must not be before 1900-01-01"),  # 1899-12-31T23:30Z
    ("9999-12-31T23:59:59Z", "must not be in the future"),
    ("2099-01-01T00:00:00Z", "must not be in the future"),
    ("9999-12-31T23:59:59-23:59", "must not be in the future"),  # past year 9999 in UTC
    ("0001-01-01T00:00:00+23:59", "must not be before 1900-01-01"),  # before year 1 in UTC
    pytest.param(_in(dt.timedelta(days=1, minutes=30)), "must not be in the future", id="now+1d30min"),
])
@pytest.mark.gen_test
async def test_a_completion_before_1900_or_after_now_is_400_naming_completed_at(api, app, completed_at, message):
    """A record's dates are bounded so that a typo (0202, 2099) is refused rather than stored; an item done in 2099
    would leave the reminders and the feed."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    response = await api.patch(path, token=token, json={"completed_at": completed_at})
    assert response.status == 400
    assert response.body == {"error_code": 1001, "message": "invalid parameter", "request": f"PATCH {path}",
                             "errors": [{"field": "completed_at", "message": message}]}
    assert (await api.get(path, token=token)).body["data"] == record


@pytest.mark.gen_test
async def test_a_completion_past_year_9999_in_utc_is_refused_as_future_in_english_and_chinese(api, app):
    """A valid RFC 3339 time whose UTC lies past 9999-12-31 is out of range, not malformed: it is named as in the
    future (in Chinese too, whose wording says what the English says: not today, as the day of slack shows)."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    for language, message, field_message in (("en", "invalid parameter", "must not be in the future"),
                                             ("zh-CN", "参数错误", "不能是未来的时间")):
        response = await api.patch(path, token=token, json={"completed_at": "9999-12-31T23:59:59-23:59"},
                                   headers={"Accept-Language": language})
        assert (response.status, response.body) == (400, {
            "error_code": 1001, "message": message, "request": f"PATCH {path}",
            "errors": [{"field": "completed_at", "message": field_message}]})
    assert (await api.get(path, token=token)).body["data"] == record


@both_backends
@pytest.mark.gen_test
async def test_a_completion_from_1900_to_a_day_after_now_is_stored(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    for completed_at in ("1900-01-01T00:00:00Z", _in(dt.timedelta(0)), _in(dt.timedelta(hours=23, minutes=55))):
        response = await api.patch(path, token=token, json={"completed_at": completed_at})
        assert (response.status, response.body["data"]["completed_at"]) == (200, completed_at)


@pytest.mark.gen_test
async def test_zone_offsets_up_to_23_59_are_applied(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    for offset, utc in [("+23:59", "2024-12-06T10:01:00Z"), ("-23:59", "2024-12-08T09:59:00Z"),
                        ("-00:00", "2024-12-07T10:00:00Z"), ("+05:45", "2024-12-07T04:15:00Z")]:
        response = await api.patch(path, token=token, json={"completed_at": f"2024-12-07T10:00:00{offset}"})
        assert (response.status, response.body["data"]["completed_at"]) == (200, utc), offset


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_records_of_another_users_pet_cannot_be_patched(api, app):
    _, alice = await user_with_token(app)
    user, bob = await user_with_token(app)
    pet = await create_pet(api, alice)
    record = await add_record(api, alice, pet["id"])
    bobs_pet = await create_pet(api, bob)
    for path in (f"/v1/pets/{pet['id']}/records/{record['id']}", f"/v1/pets/{bobs_pet['id']}/records/{record['id']}"):
        assert_error(await api.patch(path, token=bob, json={"note": "mine"}), 404, 1002, f"PATCH {path}")
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    assert (await api.get(path, token=alice)).body["data"] == record
    read_only = app.tokens.issue(user.id, ["pets:read"]).token
    assert_error(await api.patch(f"/v1/pets/{bobs_pet['id']}/records/1", token=read_only, json={"note": "x"}), 403,
                 1004, f"PATCH /v1/pets/{bobs_pet['id']}/records/1")


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_caretakers_and_owners_patch_viewers_get_403_strangers_404(api, app):
    owner, owner_token = await user_with_token(app)
    caretaker, caretaker_token = await user_with_token(app, verified=True)
    viewer, viewer_token = await user_with_token(app, verified=True)
    _, stranger_token = await user_with_token(app)
    pet = await create_pet(api, owner_token)
    for member, role in (((caretaker, caretaker_token), "caretaker"), ((viewer, viewer_token), "viewer")):
        await share(api, pet["id"], (owner, owner_token), member, role)
    record = await add_record(api, owner_token, pet["id"], due_date="2025-05-01")
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    by_caretaker = await api.patch(path, token=caretaker_token, json={"completed_at": "2025-05-01T07:00:00Z"})
    assert by_caretaker.status == 200, by_caretaker.body
    assert_error(await api.patch(path, token=viewer_token, json={"note": "x"}), 403, 1004, f"PATCH {path}")
    assert_error(await api.patch(path, token=stranger_token, json={"note": "x"}), 404, 1002, f"PATCH {path}")
    assert (await api.get(path, token=viewer_token)).body["data"] == by_caretaker.body["data"]
    by_owner = await api.patch(path, token=owner_token, json={"note": "done at the vet"},
                               headers={"If-Match": by_caretaker.headers["ETag"]})
    assert (by_owner.status, by_owner.body["data"]["version"]) == (200, 3)


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_patch_tells_app_changes_in_its_transaction_with_old_and_new_values(api, app):
    told: list[Change] = []

    async def listen(tx: Any, change: Change) -> None:
        told.append(change)

    app.changes.listen(listen)
    user, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"], note="first", due_date="2025-05-01")
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    patched = await api.patch(path, token=token, json={"note": "second", "value": None,
                                                       "completed_at": "2025-05-02T10:00:00Z"})
    assert patched.status == 200
    assert_error(await api.patch(path, token=token, json={"note": "stale"}, headers={"If-Match": '"v1"'}), 412, 1009,
                 f"PATCH {path}")
    updates = [c for c in told if (c.type, c.action) == ("record", "updated")]
    assert len(updates) == 1  # the refused one told nothing
    change = updates[0]
    assert (change.object_id, change.actor_id, change.pet_id) == (record["id"], user.id, pet["id"])
    assert dict(change.changed) == {"note": ("first", "second"),
                                    "completed_at": (None, dt.datetime(2025, 5, 2, 10, 0))}  # value stayed null
    assert change.data.version == 2 and change.data.note == "second"
    assert [(c.type, c.action) for c in told if c.type == "record"] == [("record", "created"), ("record", "updated")]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_patches_with_one_etag_exactly_one_wins_and_one_change_is_told(api, app, base_url):
    told: list[Change] = []

    async def listen(tx: Any, change: Change) -> None:
        if change.action == "updated":
            told.append(change)

    app.changes.listen(listen)
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"], due_date="2025-05-01")
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    wide = Api(AsyncHTTPClient(force_instance=True, max_clients=20), base_url)  # all 20 in flight at once
    try:
        responses = await asyncio.gather(*(
            wide.patch(path, token=token, json={"note": f"Writer {i}"}, headers={"If-Match": '"v1"'})
            for i in range(20)))
    finally:
        wide.client.close()
    assert sorted(r.status for r in responses) == [200] + [412] * 19
    assert all(r.body["error_code"] == 1009 for r in responses if r.status == 412)
    winner = next(r for r in responses if r.status == 200).body["data"]
    assert (await api.get(path, token=token)).body["data"] == winner and winner["version"] == 2
    assert [c.changed["note"] for c in told] == [(None, winner["note"])]
