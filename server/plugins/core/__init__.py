"""Core routes: liveness, readiness, the error catalog, the API document and its docs page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.openapi import ApiDocument
from server.plugins import Plugin, Route
from server.plugins.core.handlers.docs import DocsPageHandler, DocsScriptHandler, DocsStyleHandler, OpenAPIHandler
from server.plugins.core.handlers.health import ErrorsHandler, HealthHandler, ReadyHandler

if TYPE_CHECKING:
    from server.app import PetAPI


def _setup(app: PetAPI) -> None:
    app.api_document = ApiDocument(app)


PLUGIN = Plugin(
    name="core",
    routes=[
        Route("/v1/health", HealthHandler),
        Route("/v1/health/ready", ReadyHandler),
        Route("/v1/errors", ErrorsHandler),
        Route("/v1/openapi.json", OpenAPIHandler),
        Route("/v1/docs", DocsPageHandler),
        Route("/v1/docs/docs.js", DocsScriptHandler),
        Route("/v1/docs/swagger-ui-bundle.js", DocsScriptHandler),
        Route("/v1/docs/swagger-ui.css", DocsStyleHandler),
    ],
    setup=_setup,
)
