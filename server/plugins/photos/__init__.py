"""Pet photos: upload (streamed under a cap, decoded off the event loop, re-encoded without metadata, thumbnails),
cached downloads, removal; stored in the database. Members read; owner and caretakers write."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.plugins import Plugin, Route
from server.plugins.pets.views import PetColumn
from server.plugins.photos.export import export_photos
from server.plugins.photos.handlers import PhotoHandler
from server.plugins.photos.models import PhotoSettings
from server.plugins.photos.services import ROW, Photos, from_values

if TYPE_CHECKING:
    from server.app import PetAPI
    from server.plugins.pets.services import Pet


def _setup(app: PetAPI) -> None:
    settings = app.plugin_settings["photos"]
    assert isinstance(settings, PhotoSettings)  # validated at start by the model PLUGIN.settings names
    app.photos = Photos(settings)


def _fill(pet: Pet, value: list[Any] | None) -> None:
    pet.photo = None if value is None else from_values(value)


# Each pet's photo, read with the pet (its primary key): GET /v1/pets/{id} and a page of pets in one statement.
PHOTO = PetColumn(f"(SELECT {ROW} FROM pet_photos WHERE pet_photos.pet_id = pets.id)", _fill)  # noqa: S608


async def _start(app: PetAPI) -> None:
    app.pet_views.add(PHOTO)  # every setup has run by now, the pets plugin's included


async def _stop(app: PetAPI) -> None:
    app.photos.close()


PLUGIN = Plugin(
    name="photos",
    routes=[Route("/v1/pets/{pet_id}/photo", PhotoHandler)],
    setup=_setup,
    export=export_photos,
    export_sections=("photos",),
    on_start=_start,
    on_stop=_stop,
    requires=("pets",),  # a photo belongs to a pet: the pets' access rule and scopes
    settings=PhotoSettings,
)
