"""Pets: the product's main resource."""

import functools
from typing import Any

from server.plugins import Plugin, Route
from server.plugins.pets.accounts import account_deleted
from server.plugins.pets.export import export_pets
from server.plugins.pets.handlers import PetHandler, PetsHandler


def _setup(app: Any) -> None:
    app.changes.listen(functools.partial(account_deleted, app.changes))


PLUGIN = Plugin(
    name="pets",
    routes=[Route("/v1/pets", PetsHandler), Route("/v1/pets/{pet_id}", PetHandler)],
    scopes={"pets:read": "read one's own pets (and their records)",
            "pets:write": "create, change and delete one's own pets (and their records)",
            "pets:admin": "read and change every user's pets"},
    setup=_setup,
    export=export_pets,
)
