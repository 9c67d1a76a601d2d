"""The API document and its interactive docs page (Swagger UI 5, bundled: no CDN, works offline)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

from server.declare import operation
from server.handlers.base import BaseHandler

# Swagger UI sets styles through the DOM (allowed); no inline script, no eval, nothing from elsewhere. It shows an
# image answer (a pet's photo) as an object URL, hence blob: for images only; data: is also the page's empty icon.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
OPENAPI_SCHEMA = {"type": "object", "required": ["openapi", "info", "paths"],
                  "properties": {"openapi": {"type": "string"}, "info": {"type": "object"},
                                 "paths": {"type": "object"}},
                  "description": "this OpenAPI 3.1 document"}


@dataclass(frozen=True)
class Asset:
    """A bundled file: where it is under server/static and how it is served."""

    path: str
    media_type: str


ASSETS = {
    "/v1/docs": Asset("docs/index.html", "text/html; charset=UTF-8"),
    "/v1/docs/docs.js": Asset("docs/docs.js", "text/javascript; charset=UTF-8"),
    "/v1/docs/swagger-ui-bundle.js": Asset("swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=UTF-8"),
    "/v1/docs/swagger-ui.css": Asset("swagger-ui/swagger-ui.css", "text/css; charset=UTF-8"),
}


@functools.cache
def read_asset(path: str) -> tuple[bytes, str]:
    """The file's bytes (shipped as package data) and a strong ETag of them."""
    data = resources.files("server").joinpath("static", path).read_bytes()
    return data, f'"{hashlib.sha256(data).hexdigest()[:32]}"'


class OpenAPIHandler(BaseHandler):
    @operation(summary="This API document (OpenAPI 3.1)", media_type="application/json", schema=OPENAPI_SCHEMA)
    async def get(self) -> None:
        self.finish(self.application.api_document.json())


class DocsAssetHandler(BaseHandler):
    """Serves one bundled file per route (see ASSETS); revalidated with its ETag."""

    def compute_etag(self) -> str | None:
        return read_asset(ASSETS[self.route].path)[1]

    def _serve(self) -> None:
        asset = ASSETS[self.route]
        self.set_header("Content-Type", asset.media_type)
        self.set_header("Cache-Control", "public, max-age=3600")
        self.finish(read_asset(asset.path)[0])


class DocsPageHandler(DocsAssetHandler):
    @operation(summary="Interactive API documentation (Swagger UI)", media_type="text/html", cached=True)
    async def get(self) -> None:
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("Referrer-Policy", "no-referrer")
        self._serve()


class DocsScriptHandler(DocsAssetHandler):
    @operation(summary="Script of the docs page", media_type="text/javascript", cached=True)
    async def get(self) -> None:
        self._serve()


class DocsStyleHandler(DocsAssetHandler):
    @operation(summary="Style sheet of the docs page", media_type="text/css", cached=True)
    async def get(self) -> None:
        self._serve()
