"""A plugin whose error codes conflict: core (reserves range(1000, 1100), declares 1050)."""

from server.errors import APIError
from server.plugins import Plugin


class Clash(APIError):
    status, code, message, message_zh = 409, 1050, "a clash", "冲突"


PLUGIN = Plugin(name="codes_core", routes=[], errors=(Clash,), error_codes=range(1000, 1100))
