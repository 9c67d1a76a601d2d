"""Photos over HTTP on MariaDB and SQLite: upload, re-encoding, metadata stripped, downloads, access, hostile input."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.factories import Api, assert_error, both_backends, create_pet, user_with_token
from tests.plugins.photos import images

PHOTO_FIELDS = {"etag", "content_type", "width", "height", "sizes", "updated_at"}
ETAG = r'"[0-9a-f]{32}"'


async def upload(api: Api, pet_id: int, data: bytes, content_type: str, token: str, **headers: str) -> Any:
    return await api.request("PUT", f"/v1/pets/{pet_id}/photo", body=data, token=token,
                             headers={"Content-Type": content_type, **headers})


async def still_serving(api: Api, pet_id: int, token: str) -> None:
    """The worker answers other requests after a refused upload."""
    pet = await api.get(f"/v1/pets/{pet_id}", token=token)
    assert pet.status == 200, pet.body
    assert pet.body["data"]["photo"] is None


def exiftool(data: bytes, tmp_path: Path, name: str) -> dict[str, Any]:
    """Every tag exiftool (Debian's libimage-exiftool-perl) finds in the file, with its group."""
    assert shutil.which("exiftool"), "exiftool is missing: apt-get install libimage-exiftool-perl (scripts/test.sh)"
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(["exiftool", "-json", "-a", "-G1", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_jpeg_with_gps_and_orientation_is_stored_upright_and_without_metadata(api, app, tmp_path):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    sent = images.jpeg_with_gps_rotated(300, 200)
    assert b"SecretCam" in sent and b"Secret Street" in sent and b"Home Address" in sent
    assert "GPS:GPSLatitude" in exiftool(sent, tmp_path, "sent.jpg")  # the fixture really carries GPS

    created = await upload(api, pet["id"], sent, "image/jpeg", token)
    assert created.status == 201, created.body
    photo = created.body["data"]
    assert set(photo) == PHOTO_FIELDS and created.body["code"] == 201
    assert (photo["content_type"], photo["width"], photo["height"]) == ("image/jpeg", 200, 300)  # turned upright
    assert re.fullmatch(ETAG, photo["etag"]) and created.headers["ETag"] == photo["etag"]
    version = photo["etag"].strip('"')[:16]
    assert photo["sizes"] == {s: f"/v1/pets/{pet['id']}/photo?size={s}&v={version}"
                              for s in ("256", "1024", "original")}

    for size, longest in (("original", 300), ("1024", 300), ("256", 256)):
        got = await api.get(photo["sizes"][size], token=token)
        assert got.status == 200 and got.headers["Content-Type"] == "image/jpeg", got.raw[:100]
        for secret in (b"SecretCam", b"Secret Street", b"Home Address", b"Exif\0\0", b"http://ns.adobe.com/xap"):
            assert secret not in got.raw, (size, secret)
        stored = Image.open(io.BytesIO(got.raw))
        assert stored.format == "JPEG" and max(stored.size) == longest and stored.width < stored.height, size
        assert not stored.getexif() and "exif" not in stored.info and "xmp" not in stored.info, stored.info
        # Upright: the red half (left as stored in the upload) is on top once orientation 6 is applied.
        red, blue = stored.convert("RGB").getpixel((stored.width // 2, 5)), stored.getpixel(
            (stored.width // 2, stored.height - 5))
        assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0], (size, red, blue)
        tags = exiftool(got.raw, tmp_path, f"{size}.jpg")
        assert not [t for t in tags if t.split(":")[0] in ("[GPS]", "[IFD0]", "[ExifIFD]", "[XMP-dc]", "[XMP-x]")
                    or "GPS" in t or "Comment" in t], tags
        assert tags.get("[File]:ExifByteOrder") is None, tags


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_png_keeps_its_transparency_and_a_webp_works(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    png = await upload(api, pet["id"], images.png_with_transparency(400, 300), "image/png", token)
    assert png.status == 201, png.body
    assert (png.body["data"]["content_type"], png.body["data"]["width"], png.body["data"]["height"]) == (
        "image/png", 400, 300)
    thumb = await api.get(f"/v1/pets/{pet['id']}/photo?size=256", token=token)
    assert thumb.status == 200 and thumb.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(thumb.raw))
    assert image.mode == "RGBA" and image.size == (256, 192) and "Comment" not in image.info, image.info
    assert image.getpixel((10, 96))[3] == 0 and image.getpixel((250, 96))[3] == 255

    webp = await upload(api, pet["id"], images.webp(1600, 1200), "image/webp", token,
                        **{"If-Match": png.body["data"]["etag"]})
    assert webp.status == 200, webp.body  # replaces the PNG: 200, not 201
    data = webp.body["data"]
    assert (webp.body["code"], data["content_type"], data["width"]) == (200, "image/webp", 1600)
    for size, longest in (("original", 1600), ("1024", 1024), ("256", 256)):
        got = await api.get(f"/v1/pets/{pet['id']}/photo?size={size}", token=token)
        assert got.status == 200 and got.headers["Content-Type"] == "image/webp"
        assert max(Image.open(io.BytesIO(got.raw)).size) == longest


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_downloads_are_cached_and_conditional(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    photo = (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)).body["data"]
    versioned = await api.get(photo["sizes"]["256"], token=token)
    assert versioned.status == 200
    assert versioned.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert versioned.headers["X-Content-Type-Options"] == "nosniff"
    assert versioned.headers["Content-Disposition"] == f'inline; filename="pet-{pet["id"]}-256.jpg"'
    assert versioned.headers["ETag"] == photo["etag"][:-1] + '-256"'
    plain = await api.get(f"/v1/pets/{pet['id']}/photo", token=token)
    assert plain.headers["Cache-Control"] == "private, max-age=300"
    assert plain.headers["ETag"] == photo["etag"][:-1] + '-original"'
    again = await api.get(f"/v1/pets/{pet['id']}/photo", token=token, headers={"If-None-Match": plain.headers["ETag"]})
    assert (again.status, again.raw) == (304, b"")
    other = await api.get(photo["sizes"]["1024"], token=token, headers={"If-None-Match": plain.headers["ETag"]})
    assert other.status == 200 and other.raw  # another rendition's tag does not match

    # If-Match on PUT: a stale tag is refused and nothing changes; the current one replaces the photo.
    stale = await upload(api, pet["id"], images.webp(), "image/webp", token, **{"If-Match": '"' + "0" * 32 + '"'})
    assert_error(stale, 412, 1009, f"PUT /v1/pets/{pet['id']}/photo")
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"]["photo"] == photo
    garbled = await upload(api, pet["id"], images.webp(), "image/webp", token, **{"If-Match": "v1"})
    assert_error(garbled, 412, 1009, f"PUT /v1/pets/{pet['id']}/photo")
    weak = await upload(api, pet["id"], images.webp(), "image/webp", token, **{"If-Match": "W/" + photo["etag"]})
    assert_error(weak, 412, 1009, f"PUT /v1/pets/{pet['id']}/photo")  # If-Match compares strongly
    head = await api.request("HEAD", f"/v1/pets/{pet['id']}/photo", token=token)
    assert (head.status, head.raw, head.headers["ETag"]) == (200, b"", plain.headers["ETag"])
    replaced = await upload(api, pet["id"], images.webp(), "image/webp", token, **{"If-Match": photo["etag"]})
    assert replaced.status == 200, replaced.body
    gone = await api.get(f"/v1/pets/{pet['id']}/photo", token=token, headers={"If-None-Match": plain.headers["ETag"]})
    assert gone.status == 200 and gone.headers["Content-Type"] == "image/webp"


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_pets_carry_their_photo_and_lose_it_with_delete(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    assert pet["photo"] is None
    other = await create_pet(api, token, name="Tom", species="cat")
    photo = (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)).body["data"]
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"]["photo"] == photo
    listed = await api.get("/v1/pets", token=token)
    assert {p["id"]: p["photo"] for p in listed.body["data"]} == {pet["id"]: photo, other["id"]: None}
    patched = await api.patch(f"/v1/pets/{pet['id']}", json={"name": "Max"}, token=token)
    assert patched.body["data"]["photo"] == photo

    path = f"/v1/pets/{pet['id']}/photo"
    assert_error(await api.delete(path, token=token, headers={"If-Match": '"' + "1" * 32 + '"'}), 412, 1009,
                 f"DELETE {path}")
    deleted = await api.delete(path, token=token)
    assert deleted.status == 200 and deleted.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.get(path, token=token), 404, 1002, f"GET {path}", "the pet has no photo")
    assert_error(await api.delete(path, token=token), 404, 1002, f"DELETE {path}", "the pet has no photo")
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"]["photo"] is None

    # Deleting the pet deletes its photo (rows included).
    assert (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)).status == 201
    assert (await api.delete(f"/v1/pets/{pet['id']}", token=token)).status == 200
    for table in ("pet_photos", "pet_photo_chunks"):
        row = await app.db.fetch_one(f"SELECT COUNT(*) FROM {table} WHERE pet_id = %s", (pet["id"],))  # noqa: S608
        assert row == (0,), table


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_another_users_pet_photo_is_not_found(api, app):
    _, token = await user_with_token(app)
    _, stranger = await user_with_token(app)
    pet = await create_pet(api, token)
    assert (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)).status == 201
    path = f"/v1/pets/{pet['id']}/photo"
    assert_error(await api.get(path, token=stranger), 404, 1002, f"GET {path}")
    assert_error(await upload(api, pet["id"], images.webp(), "image/webp", stranger), 404, 1002, f"PUT {path}")
    assert_error(await api.delete(path, token=stranger), 404, 1002, f"DELETE {path}")
    assert (await api.get(path, token=token)).headers["Content-Type"] == "image/jpeg"  # untouched


HOSTILE = {  # name -> (body, Content-Type, status, error_code, message start)
    "16 MiB body": (lambda: b"\xff\xd8" + b"\0" * (16 * 1024 * 1024 - 2), "image/jpeg", 413, 1007,
                    "request body is too large"),
    "0-byte body": (lambda: b"", "image/jpeg", 400, 1001, "the request body is empty"),
    "truncated JPEG": (images.truncated_jpeg, "image/jpeg", 400, 1001, "image: truncated or corrupt (image file is "
                                                                       "truncated"),
    "PNG declaring 100,000 x 100,000": (lambda: images.png_declaring(100_000, 100_000), "image/png", 400, 1001,
                                        "image: declares more than 40000000 pixels"),
    "decompression-bomb PNG (8000 x 6000)": (lambda: images.png_declaring(8000, 6000, rows=None), "image/png", 400,
                                             1001, "image: declares more than 40000000 pixels (8000 x 6000)"),
    "SVG with script": (lambda: images.SVG_WITH_SCRIPT, "image/svg+xml", 415, 1007, "Content-Type must be one of"),
    "SVG sent as image/png": (lambda: images.SVG_WITH_SCRIPT, "image/png", 415, 1007, "the body is not a PNG image"),
    "GIF": (images.gif, "image/gif", 415, 1007, "Content-Type must be one of"),
    "GIF sent as image/webp": (images.gif, "image/webp", 415, 1007, "the body is not a WEBP image"),
    "HTML sent as image/jpeg": (lambda: images.HTML, "image/jpeg", 415, 1007, "the body is not a JPEG image"),
    "PNG sent as image/jpeg": (images.png_with_transparency, "image/jpeg", 415, 1007, "the body is not a JPEG image"),
    "JSON": (lambda: b'{"photo": 1}', "application/json", 415, 1007, "Content-Type must be one of"),
    "no Content-Type": (images.webp, "", 415, 1007, "Content-Type must be one of"),
}


@both_backends
@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.gen_test(timeout=60)
async def test_hostile_uploads_are_refused_and_the_worker_keeps_serving(api, app, case):
    make, content_type, status, code, message = HOSTILE[case]
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    refused = await upload(api, pet["id"], make(), content_type, token)
    assert_error(refused, status, code, f"PUT /v1/pets/{pet['id']}/photo")
    assert refused.body["message"].startswith(message), refused.body
    if code == 1001:
        assert refused.body["errors"][0]["field"] == "body", refused.body
    await still_serving(api, pet["id"], token)
    for table in ("pet_photos", "pet_photo_chunks"):
        assert await app.db.fetch_one(f"SELECT COUNT(*) FROM {table}") == (0,)  # noqa: S608


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_jpeg_with_a_zip_appended_is_stored_without_it(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    sent = images.jpeg_with_zip()
    assert b"PK\x03\x04" in sent and b"payload.html" in sent
    stored = await upload(api, pet["id"], sent, "image/jpeg", token)
    assert stored.status == 201, stored.body
    for size in ("original", "1024", "256"):
        got = await api.get(f"/v1/pets/{pet['id']}/photo?size={size}", token=token)
        assert b"PK\x03\x04" not in got.raw and b"payload.html" not in got.raw and b"<script" not in got.raw
        assert got.raw.startswith(b"\xff\xd8") and got.raw.endswith(b"\xff\xd9")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_upload_without_a_writing_token_is_refused_after_being_dropped(api, app):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/photo"
    body = images.jpeg_with_gps_rotated()
    assert_error(await upload(api, pet["id"], body, "image/jpeg", "not-a-token"), 401, 10031, f"PUT {path}")
    anonymous = await api.request("PUT", path, body=body, headers={"Content-Type": "image/jpeg"})
    assert_error(anonymous, 401, 1003, f"PUT {path}")
    from tests.factories import token_for

    reader = token_for(app, pet["owner_id"], ["pets:read"])
    assert_error(await upload(api, pet["id"], body, "image/jpeg", reader), 403, 1004, f"PUT {path}")
    await still_serving(api, pet["id"], token)


@pytest.mark.gen_test(timeout=30)
async def test_the_api_document_describes_the_binary_upload_and_download(api):
    document = (await api.get("/v1/openapi.json")).body
    operations = document["paths"]["/v1/pets/{pet_id}/photo"]
    put, get, delete = operations["put"], operations["get"], operations["delete"]
    binary = {"schema": {"type": "string", "format": "binary"}}
    assert put["requestBody"]["content"] == {"image/jpeg": binary, "image/png": binary, "image/webp": binary}
    assert {"200", "201", "400", "401", "403", "404", "412", "413", "415"} <= set(put["responses"])
    assert put["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["code"]["const"] == 201
    photo = document["components"]["schemas"]["Photo"]
    assert set(photo["required"]) == PHOTO_FIELDS
    for write in (put, delete):  # the photo's tag, not the pet's version; "*" only while it has one
        if_match = {p["name"]: p for p in write["parameters"]}["If-Match"]["description"]
        assert "the pet's own ETag, \"v3\", names no photo" in if_match and "always applies" not in if_match.split(
            "No If-Match")[0], if_match
        assert '"*": only while the pet has a photo (PUT with none yet: 412' in if_match, if_match
    assert "photo_queue_seconds" in put["responses"]["503"]["description"], put["responses"]["503"]
    assert "replaced three times over" in get["responses"]["503"]["description"], get["responses"]["503"]
    assert delete["responses"]["503"]["description"] == "Service unavailable (database unreachable): see Retry-After"
    pet_if_match = {p["name"]: p for p in document["paths"]["/v1/pets/{pet_id}"]["patch"]["parameters"]}["If-Match"]
    assert pet_if_match["description"].startswith('ETag of the version you last read (e.g. "v3"'), pet_if_match
    assert set(get["responses"]["200"]["content"]) == {"image/jpeg", "image/png", "image/webp"}
    assert get["responses"]["304"]["description"] == "Not modified: If-None-Match names the current ETag; no body"
    assert "content" not in get["responses"]["304"]
    params = {p["name"]: p for p in get["parameters"]}
    assert params["size"]["schema"]["enum"] == ["256", "1024", "original"] and "If-None-Match" in params
    assert {"ETag", "Cache-Control", "Content-Disposition", "X-Content-Type-Options"} <= set(
        get["responses"]["200"]["headers"])
    assert document["components"]["schemas"]["Pet"]["properties"]["photo"]["anyOf"] == [{"type": "object"},
                                                                                      {"type": "null"}]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_if_match_star_replaces_a_photo_and_never_adds_a_first_one(api, app):
    """RFC 9110 13.1.1: If-Match "*" is false without a current representation (the mirror of If-None-Match "*")."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/photo"
    first = await upload(api, pet["id"], images.webp(), "image/webp", token, **{"If-Match": "*"})
    assert_error(first, 412, 1009, f"PUT {path}")
    assert_error(await api.get(path, token=token), 404, 1002, f"GET {path}", "the pet has no photo")
    assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"]["version"] == 1  # nothing written
    assert_error(await api.delete(path, token=token, headers={"If-Match": "*"}), 404, 1002, f"DELETE {path}",
                 "the pet has no photo")

    assert (await upload(api, pet["id"], images.webp(), "image/webp", token)).status == 201
    replaced = await upload(api, pet["id"], images.png_with_transparency(), "image/png", token, **{"If-Match": " * "})
    assert (replaced.status, replaced.body["code"], replaced.body["data"]["content_type"]) == (200, 200, "image/png")
    assert (await api.get(path, token=token)).headers["ETag"] == replaced.body["data"]["etag"][:-1] + '-original"'
    deleted = await api.delete(path, token=token, headers={"If-Match": "*"})
    assert (deleted.status, deleted.body) == (200, {"code": 200, "data": None, "message": "ok"})
    assert_error(await api.get(path, token=token), 404, 1002, f"GET {path}", "the pet has no photo")


async def _share(app: Any, pet_id: int, user_id: int, role: str) -> None:
    """A membership, written as the households plugin writes it."""
    from server.services import utcnow

    await app.db.execute("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, %s, %s)",
                         (pet_id, user_id, role, utcnow()))


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_members_read_the_owner_and_caretakers_write_a_viewer_is_refused(api, app):
    _, owner_token = await user_with_token(app)
    carer, carer_token = await user_with_token(app)
    viewer, viewer_token = await user_with_token(app)
    pet = await create_pet(api, owner_token)
    await _share(app, pet["id"], carer.id, "caretaker")
    await _share(app, pet["id"], viewer.id, "viewer")
    path = f"/v1/pets/{pet['id']}/photo"

    by_carer = await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", carer_token)
    assert by_carer.status == 201, by_carer.body
    for token in (owner_token, carer_token, viewer_token):
        got = await api.get(path + "?size=256", token=token)
        assert (got.status, got.headers["Content-Type"]) == (200, "image/jpeg")
        assert (await api.get(f"/v1/pets/{pet['id']}", token=token)).body["data"]["photo"] == by_carer.body["data"]
    assert_error(await upload(api, pet["id"], images.webp(), "image/webp", viewer_token), 403, 1004, f"PUT {path}")
    assert_error(await api.delete(path, token=viewer_token), 403, 1004, f"DELETE {path}")
    assert (await api.get(path, token=owner_token)).headers["ETag"] == by_carer.body["data"]["etag"][:-1] + '-original"'
    assert (await api.delete(path, token=carer_token)).status == 200


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_writes_tell_the_pets_update_in_their_transaction(api, app):
    from server.changes import Change

    told: list[tuple[Change, int, int]] = []

    async def listener(tx: Any, change: Change) -> None:
        if change.pet_id is not None and change.actor_id == user.id:  # what the writer's transaction sees
            photos = await tx.fetch_one("SELECT COUNT(*) FROM pet_photos WHERE pet_id = %s", (change.pet_id,))
            version = await tx.fetch_one("SELECT version FROM pets WHERE id = %s", (change.pet_id,))
            told.append((change, photos[0], version[0]))

    app.changes.listen(listener)
    user, token = await user_with_token(app)
    pet = await create_pet(api, token)
    told.clear()
    first = (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)).body["data"]
    second = (await upload(api, pet["id"], images.png_with_transparency(), "image/png", token)).body["data"]
    assert (await api.delete(f"/v1/pets/{pet['id']}/photo", token=token)).status == 200
    assert [(c.type, c.action, c.object_id, c.pet_id, dict(c.changed), photos, version) for c, photos, version in told
            ] == [("pet", "updated", pet["id"], pet["id"], {"photo": (None, first["etag"])}, 1, 2),
                  ("pet", "updated", pet["id"], pet["id"], {"photo": (first["etag"], second["etag"])}, 1, 3),
                  ("pet", "updated", pet["id"], pet["id"], {"photo": (second["etag"], None)}, 0, 4)]
    assert [(c.data.version, c.data.photo and c.data.photo.etag) for c, _, _ in told] == [
        (2, first["etag"]), (3, second["etag"]), (4, None)]  # the pet after the change, its photo included


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_photo_change_gives_the_pet_a_new_etag_and_tells_sync_clients(api, app):
    """The pet's JSON carries its photo, so a new or deleted photo is a new version of the pet: no stale 304, a
    PATCH with the tag from before the photo is refused, and a sync client gets the pet with its photo."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}"
    before = await api.get(path, token=token)
    assert (before.status, before.headers["ETag"], before.body["data"]["photo"]) == (200, '"v1"', None)
    first_sync = (await api.get("/v1/sync", token=token)).body["data"]

    photo = (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)).body["data"]
    fresh = await api.get(path, token=token, headers={"If-None-Match": before.headers["ETag"]})
    assert (fresh.status, fresh.headers["ETag"]) == (200, '"v2"'), fresh.body
    assert (fresh.body["data"]["photo"], fresh.body["data"]["version"]) == (photo, 2)
    stale = await api.patch(path, json={"name": "Max"}, token=token, headers={"If-Match": before.headers["ETag"]})
    assert_error(stale, 412, 1009, f"PATCH {path}")
    assert (await api.get(path, token=token)).body["data"]["name"] == pet["name"]  # nothing written
    same = await api.get(path, token=token, headers={"If-None-Match": fresh.headers["ETag"]})
    assert (same.status, same.raw) == (304, b"")

    delta = await api.get(f"/v1/sync?cursor={first_sync['cursor']}", token=token)
    assert delta.status == 200, delta.body
    changes = delta.body["data"]["changes"]
    assert [(c["type"], c["id"], c["op"]) for c in changes] == [("pet", pet["id"], "upsert")]
    assert changes[0]["data"] == fresh.body["data"]  # the pet as its GET answers it, photo included

    assert (await api.delete(f"{path}/photo", token=token, headers={"If-Match": photo["etag"]})).status == 200
    gone = await api.get(path, token=token, headers={"If-None-Match": fresh.headers["ETag"]})
    assert (gone.status, gone.headers["ETag"], gone.body["data"]["photo"]) == (200, '"v3"', None)
    patched = await api.patch(path, json={"name": "Max"}, token=token, headers={"If-Match": '"v3"'})
    assert (patched.status, patched.body["data"]["version"], patched.body["data"]["name"]) == (200, 4, "Max")


@both_backends
@pytest.mark.parametrize("meanwhile", ["replaced", "deleted"])
@pytest.mark.gen_test(timeout=60)
async def test_a_download_never_sends_bytes_under_the_headers_of_the_photo_they_replaced(api, app, monkeypatch,
                                                                                         meanwhile):
    """A photo replaced (or deleted) between a GET's read of the photo's row and its read of the bytes: the answer
    is the new photo with its own headers (or 404), never its bytes under the old one's type, ETag and caching."""
    import hashlib

    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    path = f"/v1/pets/{pet['id']}/photo"
    png = (await upload(api, pet["id"], images.png_with_transparency(), "image/png", token)).body["data"]
    store, load, writes = app.photos.store, app.photos.store.load, []

    async def write_then_load(*args: Any, **kwargs: Any) -> Any:
        if not writes:  # the first download's bytes are read after the photo changed
            changed = (await upload(api, pet["id"], images.jpeg_with_gps_rotated(), "image/jpeg", token)
                       if meanwhile == "replaced" else await api.delete(path, token=token))
            writes.append(changed)
        return await load(*args, **kwargs)

    monkeypatch.setattr(store, "load", write_then_load)
    got = await api.get(png["sizes"]["original"], token=token)
    assert [w.status for w in writes] == [200]
    if meanwhile == "deleted":
        assert_error(got, 404, 1002, f"GET {path}", "the pet has no photo")
        return
    jpeg = writes[0].body["data"]
    assert (got.status, got.headers["Content-Type"], got.raw[:2]) == (200, "image/jpeg", b"\xff\xd8")
    assert got.headers["ETag"] == jpeg["etag"][:-1] + '-original"' != png["etag"][:-1] + '-original"'
    assert hashlib.sha256(got.raw).hexdigest()[:32] == jpeg["etag"].strip('"')
    assert got.headers["Cache-Control"] == "private, max-age=300"  # png's v= no longer names the current photo
    assert got.headers["Content-Disposition"] == f'inline; filename="pet-{pet["id"]}-original.jpg"'


@pytest.mark.gen_test(timeout=60)
async def test_a_photo_replaced_at_every_read_of_a_download_answers_503(api, app, monkeypatch):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    assert (await upload(api, pet["id"], images.webp(), "image/webp", token)).status == 201

    async def always_replaced(*args: Any, **kwargs: Any) -> list[bytes]:
        return []  # what the store answers once the photo the GET read is no longer current

    monkeypatch.setattr(app.photos.store, "load", always_replaced)
    path = f"/v1/pets/{pet['id']}/photo"
    got = await api.get(path, token=token)
    assert_error(got, 503, 1008, f"GET {path}", "the photo is being replaced: try again")
    assert got.headers["Retry-After"] == "1"
