"""The files an upload goes through to its photo process and back: what comes back is what process() made, as the
store's SQL literals (its database's), and no file is left behind, stored, refused or failed, on either backend."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

import pytest

from server.db import column
from server.plugins.photos.exchange import Exchange, process_files
from server.plugins.photos.imaging import Limits, process
from server.plugins.photos.storage import CHUNK
from tests.factories import assert_error, both_backends, create_pet, user_with_token
from tests.plugins.photos import images
from tests.plugins.photos.test_handlers import upload

LIMITS = Limits(8 * 1024 * 1024, 40_000_000, 4096, 85)


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tempfile's directory, for this test alone (the files are named, so they can be counted)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def read(path: str) -> bytes:
    return Path(path).read_bytes()


def exchange_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("pet-api-photo-*"))


async def files_left(directory: Path) -> list[str]:
    """The exchange's files still in the directory, once the thread removing them has had its turn."""
    for _ in range(100):
        if not exchange_files(directory):
            break
        await asyncio.sleep(0.02)
    return exchange_files(directory)


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_the_renditions_come_back_as_the_literals_of_what_process_made(app, temp_dir):
    sent = images.noisy_jpeg(700_000)
    expected = process(sent, "image/jpeg", LIMITS)
    pieces = [sent[:1000], sent[1000:400_000], sent[400_000:]]
    with Exchange() as files:
        await files.write_body(pieces)
        assert pieces == []  # the worker holds the body no longer than it takes to write it
        assert read(files.body) == sent
        got = process_files(files.body, files.renditions, "image/jpeg", LIMITS, app.db.dialect)
        assert (got.etag, got.content_type) == (expected.etag, expected.content_type)
        for back, made in zip(got.renditions, expected.renditions, strict=True):
            assert (back.size, back.width, back.height, back.data) == (made.size, made.width, made.height, b"")
            literals = list(back.literals)
            assert literals == [app.db.dialect.blob(made.data[i:i + CHUNK]) for i in range(0, len(made.data), CHUNK)]
            # ... which the database reads back as the rendition's bytes
            rows = [await app.db.fetch_one(f"SELECT {literal}") for literal in literals]  # noqa: S608
            assert b"".join(column(row[0], bytes) for row in rows if row is not None) == made.data
            assert len(literals) == -(-len(made.data) // CHUNK)
    assert await files_left(temp_dir) == []


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_uploads_stored_or_refused_leave_no_file_behind(api, app, temp_dir):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    sent = images.noisy_jpeg(600_000)
    stored = await upload(api, pet["id"], sent, "image/jpeg", token)
    assert stored.status == 201, stored.body
    original = await api.get(f"/v1/pets/{pet['id']}/photo?size=original", token=token)
    assert original.status == 200, original.body
    assert len(original.raw) > CHUNK  # stored in several chunks, read back whole: the etag is its SHA-256
    assert f'"{hashlib.sha256(original.raw).hexdigest()[:32]}"' == stored.body["data"]["etag"]
    refused = await upload(api, pet["id"], images.truncated_jpeg(), "image/jpeg", token)
    assert refused.status == 400, refused.body
    assert refused.body["error_code"] == 1001 and "truncated or corrupt" in refused.body["message"]
    stale = await upload(api, pet["id"], sent, "image/jpeg", token, **{"If-Match": '"' + "0" * 32 + '"'})
    assert stale.status == 412, stale.body
    assert stale.body["error_code"] == 1009
    assert await files_left(temp_dir) == []


@pytest.mark.gen_test(timeout=60)
async def test_an_upload_that_cannot_have_its_files_is_a_503_and_the_next_one_works(api, app, temp_dir, monkeypatch):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    sent = images.jpeg_with_gps_rotated()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir / "missing"))  # as a full or absent /tmp would
    refused = await upload(api, pet["id"], sent, "image/jpeg", token)
    assert_error(refused, 503, 1008, f"PUT /v1/pets/{pet['id']}/photo")
    assert refused.headers["Retry-After"] == "5"
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    stored = await upload(api, pet["id"], sent, "image/jpeg", token)
    assert stored.status == 201, stored.body
    assert stored.body["data"]["width"] == 200
    assert await files_left(temp_dir) == []
