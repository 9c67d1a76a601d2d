"""Liveness, readiness and the error catalog."""

from __future__ import annotations

from dataclasses import dataclass

from server.declare import operation
from server.errors import ServiceUnavailable
from server.handlers.base import BaseHandler, preferred_language


@dataclass(slots=True)
class Status:
    status: str


@dataclass(slots=True)
class ErrorInfo:
    error_code: int
    http_status: int
    message: str


OK = Status("ok")


class HealthHandler(BaseHandler):
    @operation(summary="Liveness: the process answers (touches no database)", response=Status, errors=())
    async def get(self) -> None:
        self.send(OK)


class ReadyHandler(BaseHandler):
    @operation(summary="Readiness: the database answers", response=Status)
    async def get(self) -> None:
        try:
            await self.application.db.ping()
        except ServiceUnavailable:
            raise
        except Exception as exc:  # any driver failure means not ready
            raise ServiceUnavailable(headers={"Retry-After": str(self.application.config.retry_after)}) from exc
        self.send(OK)


class ErrorsHandler(BaseHandler):
    @operation(summary="The catalog of error codes", response=list[ErrorInfo], errors=())
    async def get(self) -> None:
        lang = preferred_language(self.request.headers.get("Accept-Language"))
        self.send(self.application.error_catalog.entries(lang))
