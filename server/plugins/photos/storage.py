"""Where the photos' image bytes live, behind one small interface.

DatabaseStore keeps them in pet_photo_chunks, written in the same transaction as the pet_photos row that
names them: every worker, instance and Galera node sees a photo once its PUT has answered, and backups hold
them. README (Photos) says how an object store would take its place past one cluster."""

from __future__ import annotations

from typing import Protocol

from server.db import Dialect, Executor, column
from server.plugins.photos.imaging import SIZES, ProcessedPhoto

# Bytes per row: a statement stays far below max_allowed_packet and Galera's write-set limits.
CHUNK = 256 * 1024


def blob_literals(data: bytes, dialect: Dialect) -> tuple[str, ...]:
    """The data as the dialect's SQL literals of CHUNK bytes each (aiomysql 0.3 cannot send bytes parameters). Made
    in the photo process: they need no escaping, so the event loop only puts each literal in its statement, where
    a parameter this long would be escaped and formatted (~1.5 ms a chunk)."""
    return tuple(dialect.blob(data[start:start + CHUNK]) for start in range(0, len(data), CHUNK))


class PhotoStore(Protocol):
    """The renditions of each pet's photo."""

    async def save(self, tx: Executor, *, pet_id: int, photo: ProcessedPhoto) -> None:
        """Replace the pet's renditions (inside the transaction that writes its pet_photos row)."""

    async def load(self, db: Executor, *, pet_id: int, size: str, etag: str | None = None) -> list[bytes]:
        """One rendition's bytes, in pieces to send in order ([] when there is none); with an etag, only while that
        photo is the pet's current one ([] once it was replaced or deleted), read in one consistent read."""

    async def delete(self, tx: Executor, *, pet_id: int) -> None:
        """Remove the pet's renditions (inside the transaction that deletes its pet_photos row)."""


class DatabaseStore:
    """Renditions as rows of pet_photo_chunks; replay-safe: save deletes before it inserts."""

    async def save(self, tx: Executor, *, pet_id: int, photo: ProcessedPhoto) -> None:
        """Replace the pet's renditions."""
        await tx.execute("DELETE FROM pet_photo_chunks WHERE pet_id = %s", (pet_id,))
        for r in photo.renditions:
            assert r.size in SIZES  # the statement's text names it: one of ours, never the client's
            for seq, literal in enumerate(r.literals or blob_literals(r.data, tx.dialect)):
                # No parameters: nothing formats or escapes the literal's text on the event loop.
                await tx.execute("INSERT INTO pet_photo_chunks (pet_id, size, seq, data)"  # noqa: S608
                                 f" VALUES ({int(pet_id)}, '{r.size}', {seq}, {literal})")

    async def load(self, db: Executor, *, pet_id: int, size: str, etag: str | None = None) -> list[bytes]:
        """One rendition's bytes, in pieces to send in order ([] when there is none, or etag is not current)."""
        # One statement, so one snapshot: the chunks and the pet_photos row naming them are read together, never
        # the chunks of a photo that replaced the one the caller's headers describe.
        same, params = ("", (pet_id, size)) if etag is None else (" AND pet_photos.etag = %s", (pet_id, size, etag))
        rows = await db.fetch_all("SELECT data FROM pet_photo_chunks"  # noqa: S608
                                  " JOIN pet_photos ON pet_photos.pet_id = pet_photo_chunks.pet_id"
                                  f" WHERE pet_photo_chunks.pet_id = %s AND size = %s{same} ORDER BY seq", params)
        return [column(row[0], bytes) for row in rows]

    async def delete(self, tx: Executor, *, pet_id: int) -> None:
        """Remove the pet's renditions (the pet_photos row's foreign key would too; an object store would not)."""
        await tx.execute("DELETE FROM pet_photo_chunks WHERE pet_id = %s", (pet_id,))
