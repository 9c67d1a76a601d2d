"""A plugin whose error codes conflict: overlap (reserves range(2150, 2250), declares 2160)."""

from server.errors import APIError
from server.plugins import Plugin


class Clash(APIError):
    status, code, message, message_zh = 409, 2160, "a clash", "冲突"


PLUGIN = Plugin(name="codes_overlap", routes=[], errors=(Clash,), error_codes=range(2150, 2250))
