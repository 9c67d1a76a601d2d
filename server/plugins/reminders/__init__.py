"""Care (issue 14): reminders of open due items and a personal calendar feed of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.changes import Change
from server.db import Executor
from server.plugins import Plugin, Route
from server.plugins.reminders.export import export_reminders
from server.plugins.reminders.handlers import CalendarFeedHandler, CalendarHandler, RemindersHandler
from server.plugins.reminders.services import revoke_feed

if TYPE_CHECKING:
    from server.app import PetAPI

# A new password or a disabled account ends the feed URL too, in the transaction that revokes the tokens (a role
# change does not: the feed shows the user's own pets whatever their role).
REVOKING = frozenset({"password_hash", "disabled"})


async def _revoke_on_credentials(tx: Executor, change: Change) -> None:
    if change.type == "account" and change.action == "credentials_changed" and REVOKING & change.changed.keys():
        await revoke_feed(tx, user_id=change.object_id)


def _setup(app: PetAPI) -> None:
    app.changes.listen(_revoke_on_credentials)


PLUGIN = Plugin(
    name="reminders",
    routes=[
        Route("/v1/reminders", RemindersHandler),
        Route("/v1/users/me/calendar", CalendarFeedHandler),
        Route("/v1/calendar/{token:token}.ics", CalendarHandler),
    ],
    setup=_setup,
    export=export_reminders,
    export_sections=("reminders", "calendar_feeds"),
    requires=("accounts", "pets", "records"),  # users:me and a feed per user; records' due dates under pets
)
