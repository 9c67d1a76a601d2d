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

def _ends_feed(change: Change) -> bool:
    """A new password, or the account becoming disabled, ends the feed URL too, in the transaction that revokes the
    tokens. A role change does not (the feed shows the user's own pets whatever their role), nor does re-enabling:
    the change tells the disabled flag as (old, new), and only a change to disabled counts."""
    if (change.type, change.action) != ("account", "credentials_changed"):
        return False
    return "password_hash" in change.changed or change.changed.get("disabled", (None, False))[1] is True


async def _revoke_on_credentials(tx: Executor, change: Change) -> None:
    if _ends_feed(change):
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
