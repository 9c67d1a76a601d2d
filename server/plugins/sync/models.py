"""Request and response models of GET /v1/sync and GET /v1/events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from server.schemas.common import QueryInt
from server.validation import Query

CURSOR_LENGTH = 512  # at most: a cursor is far shorter
Cursor = Annotated[str | None, Field(min_length=1, max_length=CURSOR_LENGTH, description=(
    "the opaque cursor of the previous answer or event; none: everything the caller can see, as upserts"))]
LAST_EVENT_ID = "Last-Event-ID"
# GET /v1/events' header (what an EventSource sends when it reconnects), as the API document declares it: what
# the handler reads, a string (empty: no header; longer than any cursor, or not one: 400/1001 naming it).
LAST_EVENT_ID_PARAMETER: dict[str, Any] = {
    "name": LAST_EVENT_ID, "in": "header", "required": False, "schema": {"type": "string", "maxLength": CURSOR_LENGTH},
    "description": "The `id` of the last event received (an EventSource sends it when it reconnects): the stream "
                   "starts after that event, and it wins over `cursor`; without either, with the full listing. One "
                   "that is not a cursor of this API (tampered, garbled, another user's) is 400/1001 naming "
                   "Last-Event-ID; one older than the change log's retention, 410/1012. Empty: as if absent."}


class SyncQuery(Query):
    cursor: Cursor = None
    limit: Annotated[int, Field(ge=1, le=500, description="changes per page at most"), QueryInt] = 100


class EventsQuery(Query):
    cursor: Cursor = None


class SyncSettings(BaseModel):
    sync_retention_days: float = Field(30, gt=0, description="change log entries older than this are purged; "
                                                             "a cursor older than that answers 410/1012")
    events_heartbeat_seconds: float = Field(15, gt=0, description="a comment line on every event stream this often")
    events_poll_seconds: float = Field(0.25, gt=0, le=1, description="how often each worker reads the change log "
                                                                     "for its open event streams")


@dataclass
class SyncChangeModel:
    type: Literal["pet", "record"]
    id: int
    op: Literal["upsert", "delete"]
    version: int
    data: dict[str, Any] | None


@dataclass
class SyncPageModel:
    changes: list[SyncChangeModel]
    cursor: str
    has_more: bool
