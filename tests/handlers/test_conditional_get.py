"""If-None-Match: a pet, a record and every list carry an ETag made from their data (the same on every worker and
instance); a GET naming the current one is 304 with no body, and any change to a listed object or to the total
changes a list's tag."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import assert_error, both_backends, create_pet, user_with_token
from tests.plugins.photos import images
from tests.plugins.photos.test_handlers import upload
from tests.plugins.sync.client import share


async def tagged(api: Any, path: str, token: str) -> str:
    response = await api.get(path, token=token)
    assert response.status == 200, response.body
    return str(response.headers["ETag"])


async def not_modified(api: Any, path: str, token: str, tag: str) -> bool:
    response = await api.get(path, token=token, headers={"If-None-Match": tag})
    if response.status == 304:
        assert response.raw == b"" and response.headers["ETag"] in tag.replace("W/", "")
        return True
    assert response.status == 200 and response.body["code"] == 200
    return False


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_pet_is_304_while_its_version_is_current(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}"
    assert await tagged(api, path, token) == '"v1"'
    assert await not_modified(api, path, token, '"v1"')
    assert await not_modified(api, path, token, 'W/"v1"')  # a proxy may weaken it
    assert await not_modified(api, path, token, '"v7", "v1"')
    assert (await api.patch(path, json={"name": "Changed"}, token=token)).status == 200
    assert not await not_modified(api, path, token, '"v1"')
    assert await tagged(api, path, token) == '"v2"'


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_list_tag_changes_with_any_listed_pet_and_with_the_total(api, app):
    _, token = await user_with_token(app)
    first = await create_pet(api, token, name="First")
    path = "/v1/pets?limit=1"
    tag = await tagged(api, path, token)  # from the page's data: every worker and instance computes the same
    assert await tagged(api, path, token) == tag
    assert await not_modified(api, path, token, tag)

    await create_pet(api, token, name="Second")  # not on the first page, but the total moved
    assert not await not_modified(api, path, token, tag)
    tag = await tagged(api, path, token)
    assert (await api.patch(f"/v1/pets/{first['id']}", json={"status": "pending"}, token=token)).status == 200
    assert not await not_modified(api, path, token, tag)
    tag = await tagged(api, path, token)
    assert await not_modified(api, path, token, tag)


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_members_list_tag_changes_with_their_role_and_the_pets_photo(api, app):
    owner, token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    pet = await create_pet(api, token)
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    tag = await tagged(api, "/v1/pets", member_token)
    assert await not_modified(api, "/v1/pets", member_token, tag)
    # A role changes without a new version of the pet: the member's list shows it all the same.
    await app.db.execute("UPDATE pet_members SET role = 'caretaker' WHERE user_id = %s", (member.id,))
    listed = await api.get("/v1/pets", token=member_token, headers={"If-None-Match": tag})
    assert listed.status == 200 and [p["role"] for p in listed.body["data"]] == ["caretaker"]
    tag = listed.headers["ETag"]
    photo = await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)
    assert photo.status == 201, photo.body
    listed = await api.get("/v1/pets", token=member_token, headers={"If-None-Match": tag})
    assert listed.status == 200 and listed.body["data"][0]["photo"] == photo.body["data"]
    assert await not_modified(api, "/v1/pets", member_token, listed.headers["ETag"])


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_records_and_their_list_are_304_until_they_change(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    base = f"/v1/pets/{pet['id']}/records"
    created = await api.post(base, json={"kind": "weight", "date": "2024-01-01", "value": 4}, token=token)
    assert created.status == 201
    one = f"{base}/{created.body['data']['id']}"
    record_tag, list_tag = await tagged(api, one, token), await tagged(api, base, token)
    assert await not_modified(api, one, token, record_tag)
    assert await not_modified(api, base, token, list_tag)
    assert (await api.post(base, json={"kind": "weight", "date": "2024-02-01"}, token=token)).status == 201
    assert not await not_modified(api, base, token, list_tag)
    assert await not_modified(api, one, token, record_tag)


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_get_with_if_match_is_412_unless_it_names_the_etag_strongly(api, app):
    """RFC 9110 13.1.1 and 13.2.2: a GET's If-Match is evaluated against its answer's ETag, before If-None-Match;
    an answer with no ETag matches no list. It was ignored: a pet's GET with If-Match "v999" was served."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}"
    for tag in ('"v999"', 'W/"v1"', '"v01"', "v1"):
        assert_error(await api.get(path, token=token, headers={"If-Match": tag}), 412, 1009, f"GET {path}")
        assert (await api.request("HEAD", path, token=token, headers={"If-Match": tag})).status == 412
    for tag in ('"v1"', '"v7", "v1"', "*"):
        served = await api.get(path, token=token, headers={"If-Match": tag})
        assert (served.status, served.body["data"], served.headers["ETag"]) == (200, pet, '"v1"'), tag
    both = await api.get(path, token=token, headers={"If-Match": '"v1"', "If-None-Match": '"v1"'})
    assert (both.status, both.raw) == (304, b"")
    assert_error(await api.get("/v1/users/me", token=token, headers={"If-Match": '"x"'}), 412, 1009,
                 "GET /v1/users/me")
    assert (await api.get("/v1/users/me", token=token, headers={"If-Match": "*"})).status == 200
