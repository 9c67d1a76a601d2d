"""The photos' part of a data export: the bytes of the photo its metadata describes, even while it is replaced."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from server.plugins.photos import export
from tests.factories import both_backends, create_pet, user_with_token
from tests.plugins.photos import images
from tests.plugins.photos.test_handlers import upload


@both_backends
@pytest.mark.parametrize("meanwhile", ["replaced", "deleted"])
@pytest.mark.gen_test(timeout=60)
async def test_an_export_never_puts_a_replacements_bytes_under_the_metadata_of_the_photo_it_replaced(
        api, app, monkeypatch, meanwhile):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/photo"
    assert (await upload(api, pet["id"], images.png_with_transparency(), "image/png", token)).status == 201
    load, writes = export.STORE.load, []

    async def write_then_load(*args: Any, **kwargs: Any) -> Any:
        if not writes:  # the photo changes after the export read its row, before it reads the bytes
            writes.append(await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)
                          if meanwhile == "replaced" else await api.delete(path, token=token))
        return await load(*args, **kwargs)

    monkeypatch.setattr(export.STORE, "load", write_then_load)
    response = await api.get("/v1/users/me/export", token=token)
    assert response.status == 200
    assert [w.status for w in writes] == [200]
    photos = orjson.loads(response.raw)["data"]["sections"].get("photos", [])
    if meanwhile == "deleted":
        assert photos == []
        return
    current = await api.get(f"{path}?size=original", token=token)
    assert current.status == 200 and current.headers["Content-Type"] == "image/jpeg"
    [photo] = photos
    assert (photo["pet_id"], photo["content_type"], base64.b64decode(photo["data_base64"])) == (
        pet["id"], "image/jpeg", current.raw)
    assert (photo["width"], photo["height"]) == (writes[0].body["data"]["width"], writes[0].body["data"]["height"])
