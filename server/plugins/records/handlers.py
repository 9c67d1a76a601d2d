"""Health records under a pet, guarded by the pet's access rule: members read, owner and caretakers write."""

from __future__ import annotations

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler, id_param
from server.plugins.pets.access import find_pet, role_refusal
from server.plugins.records.models import RecordCreate, RecordListQuery, RecordUpdate
from server.plugins.records.services import (
    Record,
    create_record,
    delete_record,
    get_record,
    list_records,
    update_record,
)
from server.services import page


class RecordsHandler(BaseHandler):
    @require_scopes("pets:read")
    @operation(summary="List a pet's health records", query=RecordListQuery, response=list[Record], paginated=True)
    async def get(self, pet_id: str, *, query: RecordListQuery) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user)
        found = await list_records(self.application.db, pet_id=pet.id, query=query)
        self.send(found.items, page=page(query.limit, query.offset, found))

    @require_scopes("pets:write")
    @operation(summary="Add a health record to a pet", body=RecordCreate, status=201, response=Record,
               headers={"Location": "URL of the new record", "ETag": "version tag for If-Match"}, idempotent=True,
               why=role_refusal("write"))
    async def post(self, pet_id: str, *, body: RecordCreate) -> None:
        pet = await find_pet(self.db, pet_id=id_param(pet_id), user=self.current_user, need="write")
        record = await create_record(self.db, self.application.changes, pet_id=pet.id,
                                     actor_id=self.current_user.user_id, fields=body)
        self.set_header("Location", f"/v1/pets/{pet.id}/records/{record.id}")
        self.set_header("ETag", record.etag)
        self.send(record, 201)


class RecordHandler(BaseHandler):
    @require_scopes("pets:read")
    @operation(summary="One health record", response=Record,
               headers={"ETag": "version tag for If-Match and If-None-Match"}, cached=True)
    async def get(self, pet_id: str, record_id: str) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user)
        record = await get_record(self.application.db, pet_id=pet.id, record_id=id_param(record_id))
        self.send(record, etag=record.etag)

    @require_scopes("pets:write")
    @operation(summary="Change a record's note, value, due date or completion; with If-Match only if unchanged since",
               body=RecordUpdate, response=Record, conditional=True, headers={"ETag": "the new version tag"},
               why=role_refusal("write"))
    async def patch(self, pet_id: str, record_id: str, *, body: RecordUpdate) -> None:
        record = await update_record(self.application.db, self.application.changes, pet_id=id_param(pet_id),
                                     record_id=id_param(record_id), user=self.current_user, fields=body.changes(),
                                     if_match=self.request.headers.get("If-Match"),
                                     if_none_match=self.request.headers.get("If-None-Match"))
        self.set_header("ETag", record.etag)
        self.send(record)

    @require_scopes("pets:write")
    @operation(summary="Delete a health record; with If-Match only if unchanged since", response=None,
               conditional=True, why=role_refusal("write"))
    async def delete(self, pet_id: str, record_id: str) -> None:
        pet = await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user, need="write")
        await delete_record(self.application.db, self.application.changes, pet_id=pet.id,
                            record_id=id_param(record_id), actor_id=self.current_user.user_id,
                            if_match=self.request.headers.get("If-Match"),
                            if_none_match=self.request.headers.get("If-None-Match"))
        self.send(None)
