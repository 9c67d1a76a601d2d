"""Core routes: liveness, readiness, the error catalog, the API document and its docs page."""

from server.handlers.v1.docs import OpenAPIHandler
from server.handlers.v1.health import ErrorsHandler, HealthHandler, ReadyHandler
from server.plugins import Plugin, Route

PLUGIN = Plugin(
    name="core",
    routes=[
        Route("/v1/health", HealthHandler),
        Route("/v1/health/ready", ReadyHandler),
        Route("/v1/errors", ErrorsHandler),
        Route("/v1/openapi.json", OpenAPIHandler),
    ],
)
