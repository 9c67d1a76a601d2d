"""Members: who shares a pet, role changes, leaving or removal, and the transfer of ownership."""

from __future__ import annotations

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler, id_param
from server.plugins.households.models import Member, MemberUpdate, PageQuery, TransferCreate
from server.plugins.households.services.members import change_role, list_members, remove_member, transfer_pet
from server.plugins.pets.access import find_pet, role_refusal
from server.plugins.pets.pet import Pet
from server.services import page


class MembersHandler(BaseHandler):
    @require_scopes("pets:read")
    @operation(summary="The pet's members: user id, nickname, role, since (any member)", query=PageQuery,
               response=list[Member], paginated=True)
    async def get(self, pet_id: str, *, query: PageQuery) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user)
        found = await list_members(self.application.db, pet_id=pet.id, query=query)
        self.send(found.items, page=page(query.limit, query.offset, found))


class MemberHandler(BaseHandler):
    @require_scopes("pets:write")
    @operation(summary="Change a member's role to caretaker or viewer (owner; the owner's own role moves only by "
                       "transfer); the pet's version and ETag move on, as its GET carries the member's role",
               body=MemberUpdate, response=Member, errors=(409,), why=role_refusal("manage"))
    async def patch(self, pet_id: str, user_id: str, *, body: MemberUpdate) -> None:
        self.send(await change_role(self.application.db, self.application.changes, user=self.current_user,
                                    pet_id=id_param(pet_id), user_id=id_param(user_id), role=body.role))

    @require_scopes("pets:write")
    @operation(summary="Remove a member (owner), or leave (the member themselves; the owner cannot leave)",
               response=None, errors=(409,), why=role_refusal("manage", but="any member may remove themselves"))
    async def delete(self, pet_id: str, user_id: str) -> None:
        await remove_member(self.application.db, self.application.changes, user=self.current_user,
                            pet_id=id_param(pet_id), user_id=id_param(user_id))
        self.send(None)


class TransferHandler(BaseHandler):
    @require_scopes("pets:write")
    @operation(summary="Transfer ownership to an existing member; the former owner becomes a caretaker (owner)",
               body=TransferCreate, response=Pet, errors=(409,), conditional=True, why=role_refusal("manage"),
               headers={"ETag": "the pet's new version tag"})
    async def post(self, pet_id: str, *, body: TransferCreate) -> None:
        pet = await transfer_pet(self.application.db, self.application.changes, user=self.current_user,
                                 pet_id=id_param(pet_id), user_id=body.user_id,
                                 if_match=self.request.headers.get("If-Match"), views=self.application.pet_views,
                                 if_none_match=self.request.headers.get("If-None-Match"))
        self.set_header("ETag", pet.etag)
        self.send(pet)
