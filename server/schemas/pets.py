"""Request models of pets and their health records."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from server.validation import Body, Query

Species = Literal["dog", "cat", "bird", "rabbit", "fish", "reptile", "other"]
Sex = Literal["male", "female", "unknown"]
Status = Literal["available", "pending", "adopted"]
RecordKind = Literal["vaccination", "vet_visit", "weight", "medication"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Breed = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
PetSort = Literal["id", "-id", "name", "-name", "created_at", "-created_at"]
MAX_ID = 2**63 - 1


def _not_future(value: dt.date | None) -> dt.date | None:
    if value is not None and value > dt.datetime.now(dt.UTC).date():
        raise ValueError("must not be in the future")
    return value


class PetCreate(Body):
    name: Name
    species: Species
    breed: Breed | None = None
    sex: Sex = "unknown"
    birth_date: dt.date | None = None
    status: Status = "available"

    _birth_date = field_validator("birth_date")(_not_future)


class PetUpdate(Body):
    name: Name | None = None
    species: Species | None = None
    breed: Breed | None = None
    sex: Sex | None = None
    birth_date: dt.date | None = None
    status: Status | None = None

    _birth_date = field_validator("birth_date")(_not_future)

    @field_validator("name", "species", "sex", "status")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("must not be null")
        return value


class PetListQuery(Query):
    species: Species | None = None
    status: Status | None = None
    q: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    owner_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    sort: PetSort = "id"
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000_000)


class RecordCreate(Body):
    kind: RecordKind
    date: dt.date
    note: Annotated[str, Field(max_length=2000)] | None = None
    value: Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)] | None = None


class RecordListQuery(Query):
    kind: RecordKind | None = None
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000_000)
