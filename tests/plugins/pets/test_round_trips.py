"""The statements a pet request costs: on one machine a round trip to the database (a send and a wake-up on each
side) costs more than decoding and encoding the pet, so the hot paths are held to their count here. Figures per
request are in the README (Performance)."""

from __future__ import annotations

import pytest

from tests.factories import both_backends, create_pet, record_round_trips, record_statements, user_with_token
from tests.plugins.photos import images
from tests.plugins.photos.test_handlers import upload


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_pet_and_a_page_of_pets_are_read_with_their_photos_in_one_statement(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    other = await create_pet(api, token, name="Tom", species="cat")
    photo = (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)).body["data"]
    issued = record_statements(app, requests_only=True)

    read = await api.get(f"/v1/pets/{pet['id']}", token=token)
    assert read.status == 200
    assert read.body["data"] == {**pet, "photo": photo, "version": 2, "updated_at": read.body["data"]["updated_at"]}
    assert len(issued) == 1, issued

    issued.clear()
    listed = await api.get("/v1/pets?limit=20", token=token)
    assert listed.status == 200
    assert [(p["id"], p["photo"]) for p in listed.body["data"]] == [(pet["id"], photo), (other["id"], None)]
    assert listed.body["page"]["total"] == 2
    assert len(issued) == 1, issued


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_patch_reads_the_pet_once_inside_its_transaction(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    photo = (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)).body["data"]
    issued = record_statements(app, requests_only=True)

    patched = await api.patch(f"/v1/pets/{pet['id']}", json={"name": "Max", "birth_date": "2020-02-29"},
                              token=token)
    assert patched.status == 200, patched.body
    assert patched.body["data"] == {**pet, "name": "Max", "birth_date": "2020-02-29", "version": 3, "photo": photo,
                                    "updated_at": patched.body["data"]["updated_at"]}
    assert patched.headers["ETag"] == '"v3"'
    # What it answered is what a read finds (nothing computed differs from the row).
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"] == patched.body["data"]
    pet_reads = [i for i, sql in enumerate(issued) if sql.startswith("SELECT JSON_ARRAY(id, owner_id")]
    assert len(pet_reads) == 2, issued  # the PATCH's locking read, then the GET's
    assert pet_reads[0] < issued.index("COMMIT") < pet_reads[1], issued


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_creating_a_pet_writes_it_and_its_owner_and_reads_nothing_back(api, app):
    _, token = await user_with_token(app)
    await create_pet(api, token, name="Warm-up")
    issued = record_statements(app, requests_only=True)
    trips = record_round_trips(app, requests_only=True)
    created = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=token)
    assert created.status == 201, created.body
    assert created.body["data"]["role"] == "owner" and created.headers["ETag"] == '"v1"'
    print(f"\nPOST /v1/pets on {app.db.dialect.name}: {len(issued)} statements in {len(trips)} round trips: {trips}")
    assert (issued[0], issued[-1]) == (app.db.dialect.begin, "COMMIT"), issued
    assert [s.split(" (")[0] for s in issued if s.startswith(("INSERT INTO pets", "INSERT INTO pet_members"))] == [
        "INSERT INTO pets", "INSERT INTO pet_members"], issued
    assert not [s for s in issued if "FROM pets JOIN pet_members" in s or "idempotency_keys" in s], issued
    # BEGIN goes out with the pet's INSERT (its id is read); the writes nobody reads go out with the COMMIT.
    assert [trip[0].split(" (")[0] for trip in trips] == [app.db.dialect.begin, "INSERT INTO pet_members"], trips
    assert trips[0][1].startswith("INSERT INTO pets (") and trips[1][-1] == "COMMIT", trips
    assert sum(trips, []) == issued, trips
