"""The households plugin's error codes: 2300-2399 are reserved for it (PLUGIN.error_codes)."""

from __future__ import annotations

from server.errors import APIError


class InvitationNotPending(APIError):
    """Accepting, declining or withdrawing an invitation that was already answered or withdrawn."""

    status, code, message, message_zh = 409, 2301, "invitation is no longer pending", "邀请已不再有效"


class InvitationExpired(APIError):
    """Accepting or declining an invitation past its expires_at (invitation_ttl_seconds after it was sent)."""

    status, code, message, message_zh = 410, 2302, "invitation has expired", "邀请已过期"


class AlreadyMember(APIError):
    """Accepting an invitation to a pet the caller already has a role on: roles change by PATCH, not by invite."""

    status, code, message, message_zh = 409, 2303, "already a member of this pet", "已经是该宠物的成员"


class OwnerRoleFixed(APIError):
    """The owner's role changes only by a transfer of ownership, which names the new owner."""

    status, code, message, message_zh = (409, 2304, "the owner's role changes only by transfer",
                                         "主人的角色只能通过转让改变")


class OwnerCannotLeave(APIError):
    """The owner cannot leave or be removed: a pet always has exactly one owner; transfer it first."""

    status, code, message, message_zh = (409, 2305, "the owner cannot leave; transfer the pet first",
                                         "主人不能离开，请先转让宠物")


class AlreadyOwner(APIError):
    """A transfer to the user who already owns the pet."""

    status, code, message, message_zh = 409, 2306, "the user already owns this pet", "该用户已是宠物的主人"


class NotAMember(APIError):
    """A transfer to a user with no role on the pet (the pet exists: under /v1/pets/{id}, 404 means the pet)."""

    status, code, message, message_zh = 409, 2307, "the user is not a member of this pet", "该用户不是宠物的成员"


ERRORS: tuple[type[APIError], ...] = (InvitationNotPending, InvitationExpired, AlreadyMember, OwnerRoleFixed,
                                      OwnerCannotLeave, AlreadyOwner, NotAMember)
