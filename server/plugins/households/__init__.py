"""Households: share a pet with family and sitters by role (invitations, members, transfer) and keep its history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from server.plugins import Plugin, Route
from server.plugins.households.errors import ERRORS
from server.plugins.households.export import export_households
from server.plugins.households.handlers.history import HistoryHandler
from server.plugins.households.handlers.invitations import (
    AcceptInvitationHandler,
    DeclineInvitationHandler,
    MyInvitationsHandler,
    PetInvitationHandler,
    PetInvitationsHandler,
)
from server.plugins.households.handlers.members import MemberHandler, MembersHandler, TransferHandler
from server.plugins.households.services.history import record_change

if TYPE_CHECKING:
    from server.app import PetAPI


class HouseholdsSettings(BaseModel):
    invitation_ttl_seconds: int = Field(604800, ge=60, le=31_536_000,
                                        description="how long an invitation can be accepted (7 days)")


def _setup(app: PetAPI) -> None:
    app.changes.listen(record_change)  # every change to a pet, its records and members, in its own transaction


PLUGIN = Plugin(
    name="households",
    routes=[
        Route("/v1/pets/{pet_id}/invitations", PetInvitationsHandler),
        Route("/v1/pets/{pet_id}/invitations/{invitation_id}", PetInvitationHandler),
        Route("/v1/invitations", MyInvitationsHandler),
        Route("/v1/invitations/{invitation_id}/accept", AcceptInvitationHandler),
        Route("/v1/invitations/{invitation_id}/decline", DeclineInvitationHandler),
        Route("/v1/pets/{pet_id}/members", MembersHandler),
        Route("/v1/pets/{pet_id}/members/{user_id}", MemberHandler),
        Route("/v1/pets/{pet_id}/transfer", TransferHandler),
        Route("/v1/pets/{pet_id}/history", HistoryHandler),
    ],
    setup=_setup,
    export=export_households,
    export_sections=("history", "invitations_sent", "invitations_received"),
    requires=("pets", "records"),  # pet_members and the access rule are the pets plugin's; history covers records
    settings=HouseholdsSettings,
    errors=ERRORS,
    error_codes=range(2300, 2400),
)
