"""A plugin whose error class answers 200: not an error status."""

from server.errors import APIError
from server.plugins import Plugin


class Fine(APIError):
    status, code, message, message_zh = 200, 2801, "all fine", "一切正常"


PLUGIN = Plugin(name="errors_status", routes=[], errors=(Fine,), error_codes=range(2800, 2900))
