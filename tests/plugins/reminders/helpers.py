"""What the reminders tests share: dates counted from today (UTC), due items through the API, sharing a pet."""

from __future__ import annotations

import datetime as dt
from typing import Any

from server.app import PetAPI
from server.services import utcnow
from tests.factories import Api


def day(offset: int) -> str:
    """Today (UTC) plus offset days, as the API writes dates."""
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


async def due_item(api: Api, token: str, pet_id: int, due_in: int | None, *, kind: str = "vaccination",
                   done: bool = False, note: str | None = None) -> dict[str, Any]:
    """A record due in `due_in` days (None: no due date), completed when `done`; asserts it worked."""
    body: dict[str, Any] = {"kind": kind, "date": day(-30), "note": note}
    if due_in is not None:
        body["due_date"] = day(due_in)
    created = await api.post(f"/v1/pets/{pet_id}/records", token=token, json=body)
    assert created.status == 201, created.body
    if not done:
        return created.body["data"]
    completed = await api.patch(f"/v1/pets/{pet_id}/records/{created.body['data']['id']}", token=token,
                                json={"completed_at": "2024-06-01T12:00:00Z"})
    assert completed.status == 200, completed.body
    return completed.body["data"]


async def share(app: PetAPI, pet_id: int, user_id: int, role: str) -> None:
    """Give a user a role on a pet (a membership row, as accepting an invitation leaves it)."""
    await app.db.execute("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, %s, %s)",
                         (pet_id, user_id, role, utcnow()))
