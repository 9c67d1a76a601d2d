"""Pets: the product's main resource."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from server.plugins import Plugin, Route
from server.plugins.pets.accounts import account_deleted
from server.plugins.pets.export import export_pets
from server.plugins.pets.handlers import PetHandler, PetsHandler
from server.plugins.pets.views import PetViews

if TYPE_CHECKING:
    from server.app import PetAPI


def _setup(app: PetAPI) -> None:
    app.pet_views = PetViews()  # plugins add to a pet's representation (photos: its photo)
    app.changes.listen(functools.partial(account_deleted, app.changes))  # a deleted account's pets and shares


PLUGIN = Plugin(
    name="pets",
    routes=[Route("/v1/pets", PetsHandler), Route("/v1/pets/{pet_id}", PetHandler)],
    setup=_setup,
    scopes={"pets:read": "read one's own pets (and their records)",
            "pets:write": "create, change and delete one's own pets (and their records)",
            "pets:admin": "read and change every user's pets"},
    export=export_pets,
    export_sections=("pets", "pet_members"),
)
