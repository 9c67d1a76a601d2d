"""What other plugins add to the pets' representation (the photos plugin: each pet's `photo`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from server.db import Executor

if TYPE_CHECKING:
    from server.plugins.pets.services import Pet

Filler = Callable[[Executor, "Sequence[Pet]"], Awaitable[None]]


class PetViews:
    """Fillers that complete pets before they are answered, each in one query for a whole page of pets."""

    def __init__(self) -> None:
        self._fillers: list[Filler] = []

    def add(self, filler: Filler) -> None:
        """Run filler(db, pets) on every pet answered (a plugin calls it from its on_start)."""
        self._fillers.append(filler)

    async def complete(self, db: Executor, pets: Sequence[Pet]) -> None:
        """Let every filler complete these pets."""
        if pets:
            for filler in self._fillers:
                await filler(db, pets)
