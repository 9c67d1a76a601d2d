"""Care (issue 14): reminders of open due items and a personal calendar feed of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.plugins import Plugin, Route
from server.plugins.reminders.handlers import CalendarFeedHandler, CalendarHandler, RemindersHandler

if TYPE_CHECKING:
    from server.app import PetAPI


def _setup(app: PetAPI) -> None:
    pass


PLUGIN = Plugin(
    name="reminders",
    routes=[
        Route("/v1/reminders", RemindersHandler),
        Route("/v1/users/me/calendar", CalendarFeedHandler),
        Route("/v1/calendar/{token:token}.ics", CalendarHandler),
    ],
    setup=_setup,
    requires=("accounts", "pets", "records"),  # users:me and a feed per user; records' due dates under pets
)
