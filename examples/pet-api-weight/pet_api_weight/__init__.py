"""pet-api-weight: a pet's weight history and chart, an installable pet-api plugin (entry point `weight`)."""

from __future__ import annotations

from pathlib import Path

from pet_api_weight.errors import WeightUnitMismatch
from pet_api_weight.handlers import WeightChartHandler, WeightHandler, WeightTargetHandler
from pet_api_weight.models import WeightSettings
from server.plugins import Plugin, Route

PLUGIN = Plugin(
    name="weight",
    routes=[
        Route("/v1/pets/{pet_id}/weight", WeightHandler),
        Route("/v1/pets/{pet_id}/weight.svg", WeightChartHandler),
        Route("/v1/pets/{pet_id}/weight/target", WeightTargetHandler),
    ],
    requires=("pets", "records"),
    # The pets' scopes, as for a pet's records: a user's token reads and sets their pets' weights.
    scopes={"pets:read": "read the caller's pets (and their weights)",
            "pets:write": "create, change and delete the caller's pets (and set their target weights)"},
    settings=WeightSettings,
    errors=(WeightUnitMismatch,),
    error_codes=range(2100, 2200),
    migrations=Path(__file__).parent / "migrations",  # the default, spelled out for readers
    # no version=: `main.py plugins` shows the installed distribution's, so pyproject.toml holds the only copy
)
