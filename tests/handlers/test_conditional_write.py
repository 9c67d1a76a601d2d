"""If-None-Match on a write (RFC 9110 13.1.2): the pet's and a record's PATCH and DELETE, and the pet's photo PUT
and DELETE, are refused with 412/1009 and write nothing when it is '*' (the row exists) or names the current
version (weakly: W/"v1" names it too); a tag naming another version lets the write happen. It is evaluated with
If-Match, in the same condition; the API document lists it on every conditional write."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import assert_error, both_backends, create_pet, user_with_token
from tests.plugins.photos import images
from tests.plugins.photos.test_handlers import upload
from tests.plugins.records.test_handlers import add_record

REFUSED = ("*", '"v1"', 'W/"v1"', '"v7", "v1"', ' * ')


async def current(api: Any, path: str, token: str) -> tuple[int, Any, str]:
    response = await api.get(path, token=token)
    return response.status, response.body["data"], response.headers.get("ETag")


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_pet_write_is_refused_while_if_none_match_names_it(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}"
    for tag in REFUSED:
        patched = await api.patch(path, token=token, json={"name": "Late"}, headers={"If-None-Match": tag})
        assert_error(patched, 412, 1009, f"PATCH {path}")
        assert_error(await api.delete(path, token=token, headers={"If-None-Match": tag}), 412, 1009, f"DELETE {path}")
        assert await current(api, path, token) == (200, pet, '"v1"'), tag
    both = await api.patch(path, token=token, json={"name": "Late"}, headers={"If-Match": '"v1"', "If-None-Match": "*"})
    assert_error(both, 412, 1009, f"PATCH {path}")
    assert await current(api, path, token) == (200, pet, '"v1"')
    other = await api.patch(path, token=token, json={"name": "Max"}, headers={"If-None-Match": '"v2", "v01"'})
    assert (other.status, other.body["data"]["name"], other.headers["ETag"]) == (200, "Max", '"v2"')
    assert_error(await api.delete(path, token=token, headers={"If-None-Match": '"v2"'}), 412, 1009, f"DELETE {path}")
    assert (await current(api, path, token))[2] == '"v2"'
    gone = await api.delete(path, token=token, headers={"If-Match": '"v2"', "If-None-Match": '"v1"'})
    assert gone.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.patch(path, token=token, json={"name": "X"}, headers={"If-None-Match": "*"}), 404, 1002,
                 f"PATCH {path}")


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_record_write_is_refused_while_if_none_match_names_it(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"], note="kept")
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    for tag in REFUSED:
        patched = await api.patch(path, token=token, json={"note": "late"}, headers={"If-None-Match": tag})
        assert_error(patched, 412, 1009, f"PATCH {path}")
        assert_error(await api.delete(path, token=token, headers={"If-None-Match": tag}), 412, 1009, f"DELETE {path}")
        assert await current(api, path, token) == (200, record, '"v1"'), tag
    other = await api.patch(path, token=token, json={"note": "new"}, headers={"If-None-Match": '"v9"'})
    assert (other.status, other.body["data"]["note"], other.headers["ETag"]) == (200, "new", '"v2"')
    gone = await api.delete(path, token=token, headers={"If-None-Match": '"v1"'})
    assert gone.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.get(path, token=token), 404, 1002, f"GET {path}")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_photo_put_with_if_none_match_star_only_adds_the_first_photo(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/photo"
    first = await upload(api, pet["id"], images.webp(64, 48), "image/webp", token, **{"If-None-Match": "*"})
    assert (first.status, first.body["data"]["width"]) == (201, 64), first.body
    etag = first.body["data"]["etag"]
    for tag in ("*", etag, f"W/{etag}", f'"{"0" * 32}", {etag}'):  # any, itself, weakly, in a list
        replaced = await upload(api, pet["id"], images.webp(32, 24), "image/webp", token, **{"If-None-Match": tag})
        assert_error(replaced, 412, 1009, f"PUT {path}")
        assert_error(await api.delete(path, token=token, headers={"If-None-Match": tag}), 412, 1009, f"DELETE {path}")
        kept = (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"]["photo"]
        assert (kept["etag"], kept["width"]) == (etag, 64), tag
    stale = '"' + "0" * 32 + '"'
    other = await upload(api, pet["id"], images.webp(32, 24), "image/webp", token, **{"If-None-Match": stale})
    assert (other.status, other.body["data"]["width"]) == (200, 32), other.body


@pytest.mark.gen_test
async def test_the_api_document_lists_if_none_match_on_every_conditional_write(api):
    document = (await api.get("/v1/openapi.json")).body
    writes = {(method, path): {p["name"] for p in op.get("parameters", [])}
              for path, item in document["paths"].items() for method, op in item.items()
              if method in {"put", "patch", "delete", "post"}}
    conditional = {key for key, names in writes.items() if "If-Match" in names}
    assert {("patch", "/v1/pets/{pet_id}"), ("delete", "/v1/pets/{pet_id}/records/{record_id}"),
            ("put", "/v1/pets/{pet_id}/photo"), ("post", "/v1/pets/{pet_id}/transfer")} <= conditional
    assert all("If-None-Match" in writes[key] for key in conditional), conditional


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_write_not_declared_conditional_is_412_for_any_if_match_but_star_and_does_nothing(api, app):
    """RFC 9110 13.1.1: If-Match must be evaluated and the method not performed when it is false; a resource with
    no tag matches no list (it was ignored: PATCH /v1/users/me with If-Match "v999" wrote). '*' holds."""
    _, token = await user_with_token(app)
    before = (await api.get("/v1/users/me", token=token)).body["data"]
    for tag in ('"does-not-match"', '"v1"', 'W/"v1"', "garbled", '"", "x"'):
        patched = await api.patch("/v1/users/me", token=token, json={"nickname": "Second"}, headers={"If-Match": tag})
        assert_error(patched, 412, 1009, "PATCH /v1/users/me")
        created = await api.post("/v1/pets", token=token, json={"name": "Rex", "species": "dog"},
                                 headers={"If-Match": tag})
        assert_error(created, 412, 1009, "POST /v1/pets")
    assert (await api.get("/v1/users/me", token=token)).body["data"] == before
    assert (await api.get("/v1/pets", token=token)).body["data"] == []
    star = await api.patch("/v1/users/me", token=token, json={"nickname": "Second"}, headers={"If-Match": " * "})
    assert (star.status, star.body["data"]["nickname"]) == (200, "Second")
