"""Request and response models of GET /v1/sync and GET /v1/events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from server.schemas.common import QueryInt
from server.validation import Query

Cursor = Annotated[str | None, Field(min_length=1, max_length=512, description=(
    "the opaque cursor of the previous answer or event; none: everything the caller can see, as upserts"))]


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
