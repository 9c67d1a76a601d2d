"""A household built through the API: an owner with a pet, and members who joined by accepting invitations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.app import PetAPI
from tests.factories import Api, create_pet, token_for, unique_email, user_with_token


@dataclass
class Person:
    id: int
    email: str
    nickname: str
    token: str


@dataclass
class Household:
    owner: Person
    pet: dict[str, Any]
    members: dict[str, Person] = field(default_factory=dict)  # role or name -> person


async def person(app: PetAPI, nickname: str, *, role: str = "user") -> Person:
    """A user (its e-mail verified: invitations need it) with a token carrying the scopes of its role."""
    user, token = await user_with_token(app, email=unique_email(nickname.lower()), nickname=nickname, role=role,
                                        verified=True)
    return Person(user.id, user.email, nickname, token)


async def invite(api: Api, owner: Person, pet_id: int, email: str, role: str) -> dict[str, Any]:
    """POST an invitation (asserts 201) and return it."""
    sent = await api.post(f"/v1/pets/{pet_id}/invitations", json={"email": email, "role": role}, token=owner.token)
    assert sent.status == 201, sent.body
    return sent.body["data"]


async def share(api: Api, owner: Person, pet_id: int, invitee: Person, role: str) -> dict[str, Any]:
    """Invite and accept: the invitee becomes a member with the role."""
    invitation = await invite(api, owner, pet_id, invitee.email, role)
    accepted = await api.post(f"/v1/invitations/{invitation['id']}/accept", token=invitee.token)
    assert accepted.status == 200, accepted.body
    return accepted.body["data"]


async def household(app: PetAPI, api: Api, *, pet_name: str = "Rex") -> Household:
    """Ann owns a pet; Bob is its caretaker and Cat its viewer (both through invitations)."""
    owner = await person(app, "Ann")
    pet = await create_pet(api, owner.token, name=pet_name)
    home = Household(owner, pet)
    for nickname, role in (("Bob", "caretaker"), ("Cat", "viewer")):
        member = await person(app, nickname)
        await share(api, owner, pet["id"], member, role)
        home.members[role] = member
    return home


def admin_token(app: PetAPI, user_id: int) -> str:
    """A token with every scope of the admin role."""
    return token_for(app, user_id, sorted(app.roles.scopes_for("admin")))
