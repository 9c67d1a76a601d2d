"""Pets: the product's main resource."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from server.db import Executor
from server.plugins import Plugin, Route
from server.plugins.pets.accounts import account_deleted
from server.plugins.pets.export import export_pets
from server.plugins.pets.handlers import PetHandler, PetsHandler
from server.plugins.pets.services import backfill_name_keys
from server.plugins.pets.views import PetViews

if TYPE_CHECKING:
    from server.app import PetAPI


def _setup(app: PetAPI) -> None:
    app.pet_views = PetViews()  # plugins add to a pet's representation (photos: its photo)
    app.changes.listen(functools.partial(account_deleted, app.changes))  # a deleted account's pets and shares


log = logging.getLogger("pet_api.pets")


async def _key_names(db: Executor) -> list[str]:
    """Give the pets without one their search key (pets 0004): what was done, as lines to log."""
    done = await backfill_name_keys(db)
    return [f"search keys set for {done} pet{'s' if done != 1 else ''}"] if done else []


async def _start(app: PetAPI) -> None:
    for line in await _key_names(app.db):  # rows an older instance wrote since (a rolling update)
        log.info(line)


PLUGIN = Plugin(
    name="pets",
    routes=[Route("/v1/pets", PetsHandler), Route("/v1/pets/{pet_id}", PetHandler)],
    setup=_setup,
    on_start=_start,
    after_migrate=_key_names,  # `main.py migrate` keys them, so a large deployment's first start need not
    scopes={"pets:read": "read one's own pets (and their records)",
            "pets:write": "create, change and delete one's own pets (and their records)",
            "pets:admin": "read and change every user's pets"},
    export=export_pets,
    export_sections=("pets", "pet_members"),
)
