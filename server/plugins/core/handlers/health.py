"""Liveness, readiness and the error catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from server.db import NodeState
from server.declare import operation
from server.errors import ServiceUnavailable
from server.handlers.base import BaseHandler, preferred_language


@dataclass(slots=True)
class Status:
    status: str


@dataclass(slots=True)
class Readiness:
    """With a multi-host database URL, also the node this worker writes to and every node's state (a single
    database host answers {"status": "ok"} alone, as before)."""

    status: str
    writer: str | None = None
    nodes: list[NodeState] | None = None


@dataclass(slots=True)
class ErrorInfo:
    error_code: int
    http_status: Annotated[int, Field(description="the HTTP status it comes with (1007, whose status varies: the "
                                                   "usual one, 404; see http_statuses)")]
    message: str
    http_statuses: Annotated[list[int] | None, Field(description="only where the status varies (1007): every HTTP "
                                                                 "status it comes with")] = None


OK = Status("ok")


class HealthHandler(BaseHandler):
    @operation(summary="Liveness: the process answers (touches no database)", response=Status, errors=())
    async def get(self) -> None:
        self.send(OK)


class ReadyHandler(BaseHandler):
    @operation(summary="Readiness: the database answers (with several database hosts, also the node this worker "
                       "writes to and every node's state: ready, not_ready or down)", response=Readiness)
    async def get(self) -> None:
        db = self.application.db
        try:
            await db.ping()
        except ServiceUnavailable:
            raise
        except Exception as exc:  # any driver failure means not ready
            raise ServiceUnavailable(headers={"Retry-After": str(self.application.config.retry_after)}) from exc
        nodes = db.node_states()
        if not nodes:  # one database host: the answer of a single server, unchanged
            self.send(OK)
            return
        writer = next((node.node for node in nodes if node.writer), None)
        self.send(Readiness("ok", writer, nodes))


class ErrorsHandler(BaseHandler):
    @operation(summary="The catalog of error codes", response=list[ErrorInfo], errors=())
    async def get(self) -> None:
        lang = preferred_language(self.request.headers.get("Accept-Language"))
        self.vary("Accept-Language")
        self.send(self.application.error_catalog.entries(lang))
