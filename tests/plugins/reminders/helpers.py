"""What the reminders tests share: dates counted from today (UTC), due items and sharing, all through the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from server.plugins.accounts.services.users import User
from tests.factories import Api
from tests.plugins.households import family


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


async def share(api: Api, pet_id: int, owner: tuple[User, str], member: tuple[User, str], role: str) -> None:
    """The owner invites the member with the role and the member accepts (households' routes); users with tokens,
    as user_with_token gives them."""
    await family.share(api, _person(*owner), pet_id, _person(*member), role)


def _person(user: User, token: str) -> family.Person:
    return family.Person(user.id, user.email, user.nickname, token)
