"""A plugin with settings, an error class in its own range, a scope, and a route that shows all three."""

from pydantic import BaseModel, Field

from server.auth import require_scopes
from server.declare import operation
from server.errors import APIError
from server.handlers.base import BaseHandler
from server.plugins import Plugin, Route


class TunedSettings(BaseModel):
    limit: int = Field(5, ge=1)
    label: str = "plain"


class TuneRefused(APIError):
    status, code, message, message_zh = 409, 2101, "the tune is refused", "调音被拒绝"


class TunedHandler(BaseHandler):
    @operation(summary="The settings this application validated for the plugin", response=TunedSettings)
    async def get(self) -> None:
        self.send(self.application.plugin_settings["tuned"].model_dump())

    @require_scopes("tuned:write")
    @operation(summary="Always refused, with the plugin's own error code", response=None, errors=(409,))
    async def post(self) -> None:
        raise TuneRefused()


PLUGIN = Plugin(name="tuned", routes=[Route("/v1/tuned", TunedHandler)], settings=TunedSettings,
                scopes={"tuned:write": "change the tune"}, errors=(TuneRefused,), error_codes=range(2100, 2200))
