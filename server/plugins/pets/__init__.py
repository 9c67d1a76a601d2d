"""Pets: the product's main resource."""

from server.plugins import Plugin, Route
from server.plugins.pets.handlers import PetHandler, PetsHandler

PLUGIN = Plugin(
    name="pets",
    routes=[Route("/v1/pets", PetsHandler), Route("/v1/pets/{pet_id}", PetHandler)],
    scopes={"pets:read": "read one's own pets (and their records)",
            "pets:write": "create, change and delete one's own pets (and their records)",
            "pets:admin": "read and change every user's pets"},
)
