"""Invitations: the owner sends and withdraws them; the invitee lists and answers theirs."""

from __future__ import annotations

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler, id_param
from server.plugins.households.models import Invitation, InvitationCreate, PageQuery
from server.plugins.households.services.invitations import (
    answer_invitation,
    create_invitation,
    list_my_invitations,
    list_pet_invitations,
    withdraw_invitation,
)
from server.plugins.pets.access import find_pet, role_refusal
from server.services import page


class PetInvitationsHandler(BaseHandler):
    @require_scopes("pets:read")
    @operation(summary="The pet's pending invitations, newest first (owner)", query=PageQuery,
               response=list[Invitation], paginated=True, why=role_refusal("manage"))
    async def get(self, pet_id: str, *, query: PageQuery) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user, need="manage")
        found = await list_pet_invitations(self.application.db, pet_id=pet.id, query=query)
        self.send(found.items, page=page(query.limit, query.offset, found))

    @require_scopes("pets:write")
    @operation(summary="Invite an e-mail address to the pet as caretaker or viewer (owner); the same answer "
                       "whether the address has an account or not", body=InvitationCreate, status=201,
               response=Invitation, why=role_refusal("manage"))
    async def post(self, pet_id: str, *, body: InvitationCreate) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user, need="manage")
        ttl = self.application.plugin_settings["households"].invitation_ttl_seconds  # type: ignore[attr-defined]
        invitation = await create_invitation(self.application.db, self.application.changes, pet_id=pet.id,
                                             pet_name=pet.name, actor_id=self.current_user.user_id, email=body.email,
                                             role=body.role, ttl_seconds=ttl)
        self.send(invitation, 201)


class PetInvitationHandler(BaseHandler):
    @require_scopes("pets:write")
    @operation(summary="Withdraw a pending invitation (owner)", response=Invitation, errors=(409,),
               why=role_refusal("manage"))
    async def delete(self, pet_id: str, invitation_id: str) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user, need="manage")
        self.send(await withdraw_invitation(self.application.db, self.application.changes, pet_id=pet.id,
                                            invitation_id=id_param(invitation_id), actor_id=self.current_user.user_id))


class MyInvitationsHandler(BaseHandler):
    @require_scopes("pets:read")
    @operation(summary="The caller's pending, unexpired invitations (matched by the account's e-mail; none "
                       "until it is verified)",
               query=PageQuery, response=list[Invitation], paginated=True)
    async def get(self, *, query: PageQuery) -> None:
        found = await list_my_invitations(self.application.db, user_id=self.current_user.user_id, query=query)
        self.send(found.items, page=page(query.limit, query.offset, found))


class AcceptInvitationHandler(BaseHandler):
    @require_scopes("pets:write")
    @operation(summary="Accept an invitation: the caller becomes a member with its role (the invitee only, "
                       "with a verified e-mail: 403/1004 before)",
               response=Invitation, errors=(409, 410))
    async def post(self, invitation_id: str) -> None:
        self.send(await answer_invitation(self.application.db, self.application.changes,
                                          invitation_id=id_param(invitation_id), user=self.current_user, accept=True))


class DeclineInvitationHandler(BaseHandler):
    @require_scopes("pets:write")
    @operation(summary="Decline an invitation (the invitee only, with a verified e-mail)", response=Invitation,
               errors=(409, 410))
    async def post(self, invitation_id: str) -> None:
        self.send(await answer_invitation(self.application.db, self.application.changes,
                                          invitation_id=id_param(invitation_id), user=self.current_user, accept=False))
