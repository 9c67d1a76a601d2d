"""Pets: CRUD for their members (the access rule) with filtering, pagination and If-Match concurrency."""

from __future__ import annotations

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler, id_param
from server.plugins.pets.access import role_refusal
from server.plugins.pets.models import PetCreate, PetListQuery, PetUpdate
from server.plugins.pets.pet import page_etag
from server.plugins.pets.services import Pet, create_pet, delete_pet, find_pet, list_pets, update_pet
from server.services import page


class PetsHandler(BaseHandler):
    @require_scopes("pets:write")
    @operation(summary="Create a pet owned by the caller", body=PetCreate, status=201, response=Pet,
               headers={"Location": "URL of the new pet", "ETag": "version tag for If-Match"}, idempotent=True)
    async def post(self, *, body: PetCreate) -> None:
        pet = await create_pet(self.db, self.application.changes, owner_id=self.current_user.user_id, fields=body)
        self.set_header("Location", f"/v1/pets/{pet.id}")
        self.set_header("ETag", pet.etag)
        self.send(pet, 201)

    @require_scopes("pets:read")
    @operation(summary="List the pets the caller is a member of, with their role (all pets with pets:admin)",
               query=PetListQuery, response=list[Pet], paginated=True)
    async def get(self, *, query: PetListQuery) -> None:
        found = await list_pets(self.application.db, user=self.current_user, query=query,
                                views=self.application.pet_views)
        shown = page(query.limit, query.offset, found)
        self.send(found.items, page=shown, etag=page_etag(found.items, shown))


class PetHandler(BaseHandler):
    @require_scopes("pets:read")
    @operation(summary="One pet", response=Pet, headers={"ETag": "version tag for If-Match and If-None-Match"},
               cached=True)
    async def get(self, pet_id: str) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user,
                             views=self.application.pet_views)
        self.send(pet, etag=pet.etag)

    @require_scopes("pets:write")
    @operation(summary="Change some of a pet's fields; with If-Match only if unchanged since; fields that all hold "
                       "their current values change nothing (same version and ETag)", body=PetUpdate,
               response=Pet, conditional=True, headers={"ETag": "the pet's version tag (new when something changed)"},
               why=role_refusal("write"))
    async def patch(self, pet_id: str, *, body: PetUpdate) -> None:
        pet = await update_pet(self.application.db, self.application.changes, pet_id=id_param(pet_id),
                               user=self.current_user, fields=body.changes(),
                               if_match=self.request.headers.get("If-Match"), views=self.application.pet_views,
                               if_none_match=self.request.headers.get("If-None-Match"))
        self.set_header("ETag", pet.etag)
        self.send(pet)

    @require_scopes("pets:write")
    @operation(summary="Delete a pet and its records (its owner)", response=None, conditional=True,
               why=role_refusal("manage"))
    async def delete(self, pet_id: str) -> None:
        await delete_pet(self.application.db, self.application.changes, pet_id=id_param(pet_id),
                         user=self.current_user, if_match=self.request.headers.get("If-Match"),
                         if_none_match=self.request.headers.get("If-None-Match"))
        self.send(None)
