"""Request models of a pet's health records (dates as the pets' models take them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict

from server.plugins.pets.models import Date
from server.schemas.common import Limit, Offset
from server.validation import Body, Query

RecordKind = Literal["vaccination", "vet_visit", "weight", "medication"]


class RecordCreate(Body):
    kind: RecordKind
    date: Date
    note: Annotated[str, Strict(), Field(max_length=2000)] | None = None
    value: Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-1e12, le=1e12)] | None = None


class RecordListQuery(Query):
    kind: Annotated[RecordKind | None, Field(description="only records of this kind")] = None
    limit: Limit = 20
    offset: Offset = 0
