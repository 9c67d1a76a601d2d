"""Changes, told inside the writing transaction: a service that creates, updates or deletes something a user
cares about emits a Change with the transaction it writes in, and every listener (history, the sync change log,
a plugin's own) writes its rows with that same transaction, so they are recorded together with the write or not
at all. Listeners run on every write: one cheap statement each, never the network."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from server.db import Executor

NOTHING: Mapping[str, tuple[Any, Any]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Change:
    """What happened to one object."""

    type: str  # "pet", "record", "member", "account"; plugins add their own ("photo", ...)
    action: str  # "created", "updated", "deleted"; members: "shared", "role_changed", "transferred", "removed",
    # "left"; accounts: "credentials_changed", "deleted"
    object_id: int  # the pet's or record's id; for "member" and "account", the user's
    actor_id: int | None  # who did it; None for the system (main.py create-admin)
    pet_id: int | None = None  # the pet it belongs to; None for "account"
    # updates: field -> (old, new), JSON-able
    changed: Mapping[str, tuple[Any, Any]] = field(default_factory=lambda: NOTHING)
    data: Any = None  # the object after the change as its GET answers it; None after a delete


Listener = Callable[[Executor, Change], Awaitable[None]]


class Changes:
    """The application's listeners; plugins subscribe in their setup(app) with app.changes.listen(...)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """Call listener(tx, change) for every change from now on, inside the change's transaction."""
        self._listeners.append(listener)

    async def emit(self, tx: Executor, change: Change) -> None:
        """Tell every listener, in order, with the writer's transaction (a listener's failure fails the write)."""
        for listener in self._listeners:
            await listener(tx, change)


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """field -> (old, new) for the fields of `after` whose value differs from `before`."""
    return {name: (before.get(name), value) for name, value in after.items() if before.get(name) != value}
