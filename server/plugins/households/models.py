"""Request and response models of sharing: the same ones validate requests and write the API document."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from server.plugins.accounts.models import Email, PageQuery
from server.schemas.common import MAX_ID, PatchBody
from server.validation import Body

# Ownership moves only by POST /v1/pets/{id}/transfer, so "owner" is never granted by an invitation or a PATCH.
SharedRole = Literal["caretaker", "viewer"]
InvitationStatus = Literal["pending", "accepted", "declined", "withdrawn", "expired"]

__all__ = ["PageQuery"]


def _json_integer(value: Any) -> Any:
    """A JSON integer as JSON Schema has it: 7 or 7.0, never "7" or true (what "type": "integer" admits)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not value.is_integer()):
        raise PydanticCustomError("int_type", "must be an integer")
    return int(value)


class InvitationCreate(Body):
    email: Email
    role: Annotated[SharedRole, Field(description="caretaker (reads and writes) or viewer (reads)")]


class MemberUpdate(PatchBody):
    role: SharedRole = None  # type: ignore[assignment]  # not Optional: null is refused


class TransferCreate(Body):
    user_id: Annotated[int, Field(ge=1, le=MAX_ID, description="an existing member: the new owner"),
                       BeforeValidator(_json_integer)]


@dataclass(slots=True)
class Invitation:
    """An invitation as its inviter and its invitee see it ("expired": pending past expires_at)."""

    id: int
    pet_id: int
    pet_name: str
    email: str
    role: SharedRole
    status: InvitationStatus
    invited_by: int | None
    created_at: dt.datetime
    expires_at: dt.datetime


@dataclass(slots=True)
class Member:
    """Someone with a role on a pet (no e-mail: members see each other's nicknames)."""

    user_id: int
    nickname: str
    role: Literal["owner", "caretaker", "viewer"]
    since: dt.datetime


@dataclass(slots=True)
class Actor:
    user_id: int | None  # None: the system, or an account deleted since
    nickname: str | None


@dataclass(slots=True)
class HistoryEntry:
    """One change to a pet, its records or its members; changed: field -> [old, new] for updates."""

    id: int
    at: dt.datetime
    actor: Actor
    type: str
    action: str
    object_id: int
    changed: dict[str, list[Any]]
