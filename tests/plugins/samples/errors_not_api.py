"""A plugin whose errors hold a class that is not an APIError (it has a code, and nothing else)."""

from server.plugins import Plugin


class NotAnError:
    code = 2701


PLUGIN = Plugin(name="errors_not_api", routes=[], errors=(NotAnError,),  # type: ignore[arg-type]
                error_codes=range(2700, 2800))
