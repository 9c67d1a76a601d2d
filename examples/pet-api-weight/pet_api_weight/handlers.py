"""The weight routes: thin handlers over the core's access rule (find_pet) and the plugin's service."""

from __future__ import annotations

import hashlib

from pet_api_weight.chart import render_chart
from pet_api_weight.errors import WeightUnitMismatch
from pet_api_weight.models import TargetUpdate, WeightSeries, WeightSettings, WeightTarget
from pet_api_weight.service import delete_target, get_target, set_target, weight_series
from server.app import PetAPI
from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler, id_param
from server.plugins.pets.access import Need, find_pet
from server.plugins.pets.pet import Pet

SVG_TYPE = "image/svg+xml"
SVG_SCHEMA = {"type": "string", "description": "an SVG 1.1 document: the weight line chart, 800x400"}


class WeightBaseHandler(BaseHandler):
    application: PetAPI

    @property
    def weight_settings(self) -> WeightSettings:
        settings = self.application.plugin_settings["weight"]
        assert isinstance(settings, WeightSettings)  # validated at start by the model PLUGIN.settings names
        return settings

    async def member_pet(self, pet_id: str, need: Need = "read") -> Pet:
        """The pet if the caller may `need` it: 404/1002 without a role, 403/1004 when the role does not allow it
        (the core's rule, exactly as on /v1/pets/{id})."""
        return await find_pet(self.application.db, pet_id=id_param(pet_id), user=self.current_user, need=need)


class WeightHandler(WeightBaseHandler):
    @require_scopes("pets:read")
    @operation(summary="A pet's weight series (its weight records), statistics and target", response=WeightSeries)
    async def get(self, pet_id: str) -> None:
        pet = await self.member_pet(pet_id)
        self.send(await weight_series(self.application.db, pet_id=pet.id, unit=self.weight_settings.default_unit))


class WeightChartHandler(WeightBaseHandler):
    @require_scopes("pets:read")
    @operation(summary="A pet's weight as an SVG line chart (an empty chart with a message when it has none)",
               media_type=SVG_TYPE, schema=SVG_SCHEMA, errors=(503,), cached=True,
               headers={"ETag": "tag of this chart, for If-None-Match"})
    async def get(self, pet_id: str) -> None:
        pet = await self.member_pet(pet_id)
        series = await weight_series(self.application.db, pet_id=pet.id, unit=self.weight_settings.default_unit)
        svg = render_chart(series, title=pet.name).encode()
        self.set_header("Content-Type", SVG_TYPE)
        self.set_header("Cache-Control", "private, no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "default-src 'none'")
        # A chart is cheap to hash; a 304 saves sending it again.
        self.set_header("ETag", f'"{hashlib.sha256(svg).hexdigest()[:32]}"')
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
        else:
            self.finish(svg)


class WeightTargetHandler(WeightBaseHandler):
    @require_scopes("pets:read")
    @operation(summary="A pet's target weight (null when none is set)", response=WeightTarget | None)
    async def get(self, pet_id: str) -> None:
        pet = await self.member_pet(pet_id)
        self.send(await get_target(self.application.db, pet_id=pet.id, unit=self.weight_settings.default_unit))

    @require_scopes("pets:write")
    @operation(summary="Set a pet's target weight, in the server's unit", body=TargetUpdate, response=WeightTarget,
               errors=(409,))
    async def put(self, pet_id: str, *, body: TargetUpdate) -> None:
        pet = await self.member_pet(pet_id, "write")
        unit = self.weight_settings.default_unit
        if body.unit is not None and body.unit != unit:
            raise WeightUnitMismatch(f"unit: this server records weights in {unit}, not {body.unit}",
                                     errors=[{"field": "unit", "message": f"must be {unit}"}])
        self.send(await set_target(self.application.db, pet_id=pet.id, weight=body.weight, unit=unit))

    @require_scopes("pets:write")
    @operation(summary="Remove a pet's target weight (done as well when none is set)", response=None)
    async def delete(self, pet_id: str) -> None:
        pet = await self.member_pet(pet_id, "write")
        await delete_target(self.application.db, pet_id=pet.id)
        self.send(None)
