"""Pet photos: upload (streamed under a cap, decoded off the event loop, re-encoded without metadata, thumbnails),
cached downloads, removal; stored in the database. Members read; owner and caretakers write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from server.plugins import Plugin, Route
from server.plugins.photos.export import export_photos
from server.plugins.photos.handlers import PhotoHandler
from server.plugins.photos.models import PhotoSettings
from server.plugins.photos.services import Photos, photos_of

if TYPE_CHECKING:
    from server.app import PetAPI
    from server.db import Executor
    from server.plugins.pets.services import Pet


def _setup(app: PetAPI) -> None:
    settings = app.plugin_settings["photos"]
    assert isinstance(settings, PhotoSettings)  # validated at start by the model PLUGIN.settings names
    app.photos = Photos(settings)


async def _fill(db: Executor, pets: Sequence[Pet]) -> None:
    found = await photos_of(db, pet_ids=[pet.id for pet in pets])
    for pet in pets:
        pet.photo = found.get(pet.id)


async def _start(app: PetAPI) -> None:
    app.pet_views.add(_fill)  # every setup has run by now, the pets plugin's included


async def _stop(app: PetAPI) -> None:
    app.photos.close()


PLUGIN = Plugin(
    name="photos",
    routes=[Route("/v1/pets/{pet_id}/photo", PhotoHandler)],
    setup=_setup,
    export=export_photos,
    on_start=_start,
    on_stop=_stop,
    requires=("pets",),  # a photo belongs to a pet: the pets' access rule and scopes
    settings=PhotoSettings,
)
