"""A plugin whose error codes conflict: outside (reserves range(2300, 2400), declares 2500)."""

from server.errors import APIError
from server.plugins import Plugin


class Clash(APIError):
    status, code, message, message_zh = 409, 2500, "a clash", "冲突"


PLUGIN = Plugin(name="codes_outside", routes=[], errors=(Clash,), error_codes=range(2300, 2400))
