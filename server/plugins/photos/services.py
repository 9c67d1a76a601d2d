"""Photos: the pool that decodes them, the metadata's SQL, and writes with If-Match."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from server.auth import Principal
from server.changes import Change, Changes
from server.db import Dialect, Executor, IntegrityViolation, column
from server.errors import NotFound, PreconditionFailed
from server.plugins.pets.access import find_pet
from server.plugins.pets.services import bump_version
from server.plugins.photos.exchange import Exchange, process_files
from server.plugins.photos.imaging import Limits, ProcessedPhoto
from server.plugins.photos.models import Photo, PhotoSettings
from server.plugins.photos.pool import ProcessPool
from server.plugins.photos.storage import DatabaseStore, PhotoStore
from server.services import json_row, utcnow

ROW = json_row("pet_id, etag, content_type, width, height, updated_at")
TAG_RE = re.compile(r'(W/)?"([0-9a-f]{32})(?:-[0-9a-z]+)?"')
VERSION_LENGTH = 16  # hex digits of the etag in the `v=` of the sizes' URLs
ANY = "*"
READ_ATTEMPTS = 3  # a photo replaced between its metadata's read and its bytes' is read again, at most this often


class Photos:
    """The application's photo machinery: settings, the bounded pool of decoding processes and the image store."""

    def __init__(self, settings: PhotoSettings, store: PhotoStore | None = None) -> None:
        self.settings = settings
        self.store: PhotoStore = store or DatabaseStore()
        self.limits = Limits(settings.photo_max_bytes, settings.photo_max_pixels, settings.photo_max_side,
                             settings.photo_quality)
        # Processes start on the first upload: photo_workers images decoded at once, photo_queue more waiting
        # (photo_queue_seconds at most).
        self.pool = ProcessPool(workers=settings.photo_workers, max_waiting=settings.photo_queue,
                                preload=(__name__,), cpu_share=settings.photo_cpu_share,
                                max_wait=settings.photo_queue_seconds)

    @contextlib.asynccontextmanager
    async def processed(self, body: list[bytes], content_type: str, dialect: Dialect) -> AsyncIterator[ProcessedPhoto]:
        """The renditions of an upload (its body in the pieces it arrived in: emptied once they are in their file, so
        a waiting upload holds no memory here), computed in a pool process, as the dialect's SQL literals; they are
        read from their file as they are stored, so store them inside the block (exchange.py)."""
        with Exchange() as files:
            await files.write_body(body)
            yield await self.pool.run(process_files, files.body, files.renditions, content_type, self.limits, dialect)

    def close(self) -> None:
        """Stop the pool's processes once the images being processed are done."""
        self.pool.close()


def decode(raw: str) -> Photo:
    """A photo row (ROW) as its metadata."""
    return from_values(orjson.loads(raw))


def from_values(r: list[Any]) -> Photo:
    """A photo row (ROW) already parsed (as a pet's added column arrives) as its metadata."""
    pet_id, etag = r[0], r[1]
    base = f"/v1/pets/{pet_id}/photo?size="
    version = f"&v={etag[:VERSION_LENGTH]}"
    return Photo(f'"{etag}"', r[2], r[3], r[4], {s: f"{base}{s}{version}" for s in ("256", "1024", "original")},
                 dt.datetime.fromisoformat(r[5]))


def tags(header: str | None) -> list[str] | None:
    """The photo versions an If-Match names (a rendition's ETag names its photo's), compared strongly as the pets'
    (RFC 9110 13.1.1: a weak W/"..." tag names none); [ANY] for '*' (whichever photo is current); None for no
    header."""
    if header is None:
        return None
    if header.strip() == ANY:
        return [ANY]
    return [version for weak, version in TAG_RE.findall(header) if not weak]


def match_condition(wanted: list[str]) -> tuple[str, tuple[str, ...]]:
    """The condition an If-Match puts on the write of the pet's photo row (412 when no row matches): '*' names
    whichever photo is current, so the row only has to exist (RFC 9110 13.1.1: false with no photo)."""
    if wanted == [ANY]:
        return "", ()
    return f" AND etag IN ({', '.join(['%s'] * len(wanted))})", tuple(wanted)


def none_match_refuses(header: str | None, current: Photo | None) -> bool:
    """Whether an If-None-Match refuses a write to the pet's photo (RFC 9110 13.1.2): '*' while it has one, or a
    tag naming the current photo, compared weakly (W/"..." names it too, as for a GET)."""
    if header is None or current is None:
        return False
    return header.strip() == "*" or current.etag.strip('"') in {version for _, version in TAG_RE.findall(header)}


async def get_photo(db: Executor, *, pet_id: int) -> Photo | None:
    """The pet's photo metadata, or None."""
    row = await db.fetch_one(f"SELECT {ROW} FROM pet_photos WHERE pet_id = %s", (pet_id,))  # noqa: S608
    return None if row is None else decode(column(row[0], str))


async def put_photo(db: Executor, changes: Changes, *, store: PhotoStore, pet_id: int, user: Principal,
                    photo: ProcessedPhoto, if_match: str | None,
                    if_none_match: str | None = None) -> tuple[Photo, bool]:
    """Store the pet's photo (replacing the one it has) and say whether it is its first; with If-Match, only when
    it names the current photo ('*': any; none yet: 412 too); with If-None-Match, only when it does not (`*`: only the
    first photo, never a replacement). The pet gets a new version (its ETag) and tells ("pet",
    "updated", changed photo: old etag -> new) in the same transaction."""
    wanted = tags(if_match)
    original = photo.original

    async def write(tx: Executor) -> tuple[Photo, bool]:  # replayed whole on a conflict: same effect each time
        # The pet's row first, as the pet's own writes lock it (no deadlock with them); 404 if it went meanwhile.
        await find_pet(tx, pet_id=pet_id, user=user, need="write", lock=True)
        now = utcnow()
        before = await get_photo(tx, pet_id=pet_id)
        if none_match_refuses(if_none_match, before):
            raise PreconditionFailed()
        args: tuple[Any, ...] = (photo.etag, photo.content_type, original.width, original.height, now, pet_id)
        update = ("UPDATE pet_photos SET etag = %s, content_type = %s, width = %s, height = %s, updated_at = %s"
                  " WHERE pet_id = %s")
        if wanted is not None:
            if not wanted:
                raise PreconditionFailed()
            condition, versions = match_condition(wanted)
            result = await tx.execute(update + condition, (*args, *versions))
            if result.rowcount == 0:
                raise PreconditionFailed()
            created = False
        else:
            created = (await tx.execute(update, args)).rowcount == 0
            if created:
                try:
                    await tx.execute("INSERT INTO pet_photos (pet_id, etag, content_type, width, height, created_at,"
                                     " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                                     (pet_id, photo.etag, photo.content_type, original.width, original.height, now,
                                      now))
                except IntegrityViolation:  # the pet was deleted meanwhile
                    raise NotFound() from None
        await store.save(tx, pet_id=pet_id, photo=photo)
        stored = await get_photo(tx, pet_id=pet_id)
        assert stored is not None
        await _pet_changed(tx, changes, pet_id=pet_id, user=user, before=before, after=stored)
        return stored, created

    return await db.run_transaction(write)


async def delete_photo(db: Executor, changes: Changes, *, store: PhotoStore, pet_id: int, user: Principal,
                       if_match: str | None, if_none_match: str | None = None) -> Photo:
    """Remove the pet's photo (404 when it has none; 412 when If-Match names another, or If-None-Match is `*` or
    names it) and return what it was; the
    pet gets a new version and tells ("pet", "updated", changed photo: etag -> None) in the same transaction. (A
    deleted pet's photo goes with it: its "pet" change says so.)"""
    wanted = tags(if_match)

    async def remove(tx: Executor) -> Photo:
        await find_pet(tx, pet_id=pet_id, user=user, need="write", lock=True)
        current = await get_photo(tx, pet_id=pet_id)
        if current is None:
            raise NotFound("the pet has no photo")
        if none_match_refuses(if_none_match, current):
            raise PreconditionFailed()
        if wanted is not None and not wanted:
            raise PreconditionFailed()
        condition, versions = ("", ()) if wanted is None else match_condition(wanted)
        await store.delete(tx, pet_id=pet_id)
        result = await tx.execute(f"DELETE FROM pet_photos WHERE pet_id = %s{condition}",  # noqa: S608
                                  (pet_id, *versions))
        if result.rowcount == 0:
            raise PreconditionFailed()
        await _pet_changed(tx, changes, pet_id=pet_id, user=user, before=current, after=None)
        return current

    return await db.run_transaction(remove)


async def _pet_changed(tx: Executor, changes: Changes, *, pet_id: int, user: Principal, before: Photo | None,
                       after: Photo | None) -> None:
    """The pet's representation carries its photo: a new version of the pet (so its ETag, If-Match and sync clients
    see the change), told as the pet's update with the photo's etags."""
    pet = await bump_version(tx, pet_id=pet_id, user=user)
    pet.photo = after
    changed = {"photo": (None if before is None else before.etag, None if after is None else after.etag)}
    await changes.emit(tx, Change("pet", "updated", pet_id, user.user_id, pet_id, changed=changed, data=pet))
