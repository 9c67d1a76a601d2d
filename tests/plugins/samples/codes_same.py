"""A plugin that claims error code 2101, which tests.plugins.samples.tuned declares too."""

from server.errors import APIError
from server.plugins import Plugin


class SameCode(APIError):
    status, code, message, message_zh = 409, 2101, "the same code", "相同的代码"


PLUGIN = Plugin(name="codes_same", routes=[], errors=(SameCode,), error_codes=range(2100, 2200))
