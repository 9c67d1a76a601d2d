"""A pet's history: who changed what, newest first."""

from __future__ import annotations

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler, id_param
from server.plugins.households.models import HistoryEntry, PageQuery
from server.plugins.households.services.history import list_history
from server.plugins.pets.access import find_pet
from server.services import page


class HistoryHandler(BaseHandler):
    @require_scopes("pets:read")
    @operation(summary="The pet's history, newest first: when, who, what, and for updates the changed fields "
                       "with old and new values (any member)", query=PageQuery, response=list[HistoryEntry],
               paginated=True)
    async def get(self, pet_id: str, *, query: PageQuery) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user)
        found = await list_history(self.application.db, pet_id=pet.id, query=query)
        self.send(found.items, page=page(query.limit, query.offset, found))
