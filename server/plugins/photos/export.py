"""The photos plugin's part of a user's data export: each photo of the pets the user is a member of, with its
metadata and the stored original's bytes inline as base64 (an export is self-contained: it stays readable after
the account is deleted, when no URL would answer). One photo is held at a time, at most photo_max_side pixels."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

from server.db import Executor, column
from server.db.pages import keyset
from server.plugins.photos.models import Photo
from server.plugins.photos.services import READ_ATTEMPTS, ROW, decode, get_photo
from server.plugins.photos.storage import DatabaseStore

STORE = DatabaseStore()  # the only store (Photos.store defaults to it); stateless


async def export_photos(db: Executor, user_id: int) -> AsyncIterator[tuple[str, Any]]:
    """('photos', {pet_id, content_type, width, height, updated_at, data_base64}) per pet with a photo."""
    async for found in keyset(db, f"SELECT pet_photos.pet_id, {ROW} FROM pet_photos"  # noqa: S608
                                  " WHERE pet_id IN (SELECT pet_id FROM pet_members WHERE user_id = %s)",
                              (user_id,), order=("pet_photos.pet_id",)):
        pet_id = column(found[0], int)
        photo: Photo | None = decode(column(found[1], str))
        for _ in range(READ_ATTEMPTS):  # the bytes of the photo the metadata describes, never its replacement's
            assert photo is not None
            pieces = await STORE.load(db, pet_id=pet_id, size="original", etag=photo.etag.strip('"'))
            if pieces:
                yield "photos", {"pet_id": pet_id, "content_type": photo.content_type, "width": photo.width,
                                 "height": photo.height, "updated_at": photo.updated_at,
                                 "data_base64": base64.b64encode(b"".join(pieces)).decode("ascii")}
                break
            photo = await get_photo(db, pet_id=pet_id)  # replaced or deleted since: the current one, if any
            if photo is None:
                break
