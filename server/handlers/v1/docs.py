"""The API document, generated from the mounted routes."""

from __future__ import annotations

from server.handlers.base import BaseHandler, dumps


class OpenAPIHandler(BaseHandler):
    async def get(self) -> None:
        """The OpenAPI 3.1 document of the mounted routes."""
        self.finish(dumps(self.application.openapi_document()))
