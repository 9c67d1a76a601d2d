"""PUT, GET and DELETE /v1/pets/{pet_id}/photo: the pets' access rule, bodies streamed under a cap."""

from __future__ import annotations

from server.auth import bearer_token, has_scopes, require_scopes
from server.declare import operation
from server.errors import APIError, InvalidParameter, NotFound, ServiceUnavailable
from server.handlers.base import BaseHandler, header, id_param
from server.plugins.pets.access import find_pet, role_refusal
from server.plugins.photos.imaging import EXTENSIONS, FORMATS, refused_type
from server.plugins.photos.models import Photo, PhotoQuery
from server.plugins.photos.services import (
    READ_ATTEMPTS,
    VERSION_LENGTH,
    Photos,
    delete_photo,
    get_photo,
    put_photo,
)

WRITE = frozenset({"pets:write"})
IMAGE_SCHEMA = {"type": "string", "format": "binary", "description": "the image's bytes"}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}
YEAR = 31_536_000
IF_MATCH = ("The ETag of the photo you last read: its PUT's ETag, the pet's photo.etag or a rendition's ETag (e.g. "
            '"4fed272f58b35f3c02c5c65c5ac73aec" or "4fed272f58b35f3c02c5c65c5ac73aec-256"; the pet\'s own ETag, "v3", '
            "names no photo), or a list of them: the write happens only if one of them is the current photo "
            '(compared strongly: a weak W/"..." names none), else 412 and nothing is written. "*": only while the pet '
            "has a photo (PUT with none yet: 412, nothing written; DELETE with none: 404). No If-Match: the write "
            "always applies.")
UNAVAILABLE = {  # the photo routes' 503s: more than the database
    "get": "Service unavailable (database unreachable, or the photo replaced three times over during this GET): "
           "see Retry-After",
    "put": "Service unavailable, nothing stored: photo_queue uploads already wait for a photo process, none was free "
           "within photo_queue_seconds, the temporary disk is full, a photo process died twice on this image, or "
           "the database is unreachable; see Retry-After"}


class PhotoHandler(BaseHandler):
    drop_body = False  # an upload the method will refuse (401/403/415): read and dropped as it arrives

    @property
    def photos(self) -> Photos:
        return self.application.photos

    def body_limit(self) -> int:
        if self.request.method == "PUT":
            return self.photos.settings.photo_max_bytes
        return super().body_limit()

    def prepare(self) -> None:
        super().prepare()
        if self.request.method != "PUT":
            return
        # The connection's own cap (make_http_server's) only stops a client that sends far past the limit.
        raise_cap = getattr(self.request.connection, "set_max_body_size", None)
        if raise_cap is not None:
            raise_cap(max(4 * self.body_limit(), 16 * 1024 * 1024))
        # An upload the method will refuse (401/403 for a caller whose token cannot write, 415 for another type) is
        # answered after the body is read, so the client gets the answer and not a reset; it is dropped as it
        # arrives, never held.
        try:
            principal = self.application.tokens.verify(bearer_token(header(self.request, "Authorization")))
            allowed = has_scopes(principal.scopes, WRITE) and self.content_type in FORMATS
        except APIError:
            allowed = False
        self.drop_body = not allowed

    @property
    def content_type(self) -> str:
        """The request's media type, without parameters, lower case."""
        return (header(self.request, "Content-Type") or "").split(";")[0].strip().lower()

    def data_received(self, chunk: bytes) -> None:
        if not self.drop_body:
            super().data_received(chunk)

    @require_scopes("pets:read")
    @operation(summary="A pet's photo: the image itself (members of the pet)", query=PhotoQuery,
               media_type=tuple(FORMATS), schema=IMAGE_SCHEMA, cached=True, errors=(503,),
               why={503: UNAVAILABLE["get"]},
               headers={"ETag": "tag of this rendition, for If-None-Match",
                        "Cache-Control": "private; a year with the current v=, else photo_cache_seconds",
                        "Content-Disposition": "inline, with a file name made of the pet id and the size",
                        "X-Content-Type-Options": "nosniff"})
    async def get(self, pet_id: str, *, query: PhotoQuery) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user, need="read")
        for _ in range(READ_ATTEMPTS):
            photo = await get_photo(self.application.db, pet_id=pet.id)
            if photo is None:
                raise NotFound("the pet has no photo")
            version = photo.etag.strip('"')
            self.set_header("ETag", f'"{version}-{query.size}"')
            fresh = query.v is not None and query.v == version[:VERSION_LENGTH]
            seconds = YEAR if fresh else self.photos.settings.photo_cache_seconds
            self.set_header("Cache-Control", f"private, max-age={seconds}" + (", immutable" if fresh else ""))
            if self.check_etag_header():
                self.set_status(304)
                self.clear_header("Content-Type")
                self.finish()
                return
            # Only this version's bytes: a photo replaced (or deleted) since the read above is read again, so its
            # bytes never go out under the headers of the one it replaced.
            pieces = await self.photos.store.load(self.application.db, pet_id=pet.id, size=query.size, etag=version)
            if pieces:
                break
        else:
            raise ServiceUnavailable("the photo is being replaced: try again", headers={"Retry-After": "1"})
        self.set_header("Content-Type", photo.content_type)
        self.set_header("Content-Disposition",
                        f'inline; filename="pet-{pet.id}-{query.size}.{EXTENSIONS[photo.content_type]}"')
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)
        for piece in pieces:
            self.write(piece)
        self.finish()

    @require_scopes("pets:write")
    @operation(summary="Upload a pet's photo (owner and caretakers): re-encoded, metadata stripped, thumbnails made",
               upload=tuple(FORMATS), response=Photo, also=(201,), conditional=True, if_match=IF_MATCH,
               why={503: UNAVAILABLE["put"], **role_refusal("write")},
               headers={"ETag": "the photo's new tag, for If-Match"})
    async def put(self, pet_id: str) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user, need="write")
        content_type = self.content_type
        if content_type not in FORMATS:  # its body was dropped unread
            raise refused_type(content_type)
        pieces = self.body_pieces()  # 413 when over photo_max_bytes
        if not any(pieces):
            raise InvalidParameter("the request body is empty: send the image's bytes",
                                   errors=[{"field": "body", "message": "an image is required"}])
        async with self.photos.processed(pieces, content_type, self.application.db.dialect) as processed:
            photo, created = await put_photo(self.application.db, self.application.changes,
                                             store=self.photos.store, pet_id=pet.id, user=self.current_user,
                                             photo=processed, if_match=header(self.request, "If-Match"),
                                             if_none_match=header(self.request, "If-None-Match"))
        self.set_header("ETag", photo.etag)
        self.send(photo, 201 if created else 200)

    @require_scopes("pets:write")
    @operation(summary="Remove a pet's photo (owner and caretakers)", response=None, conditional=True,
               if_match=IF_MATCH, why=role_refusal("write"))
    async def delete(self, pet_id: str) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user, need="write")
        await delete_photo(self.application.db, self.application.changes, store=self.photos.store, pet_id=pet.id,
                           user=self.current_user, if_match=header(self.request, "If-Match"),
                           if_none_match=header(self.request, "If-None-Match"))
        self.send(None)
