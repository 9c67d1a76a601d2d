"""The plugin's settings, its request body and the shapes it answers with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from server.validation import Body

Unit = Literal["kg", "lb"]
KG_PER_LB = 0.45359237  # the international avoirdupois pound, exactly


class WeightSettings(BaseModel):
    """profile `plugin_settings: {weight: {...}}` or PET_API_WEIGHT__<KEY>."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_unit: Annotated[Unit, Field(description=(
        "the unit of weight records' value (records carry no unit) and of targets"))] = "kg"


class TargetUpdate(Body):
    weight: Annotated[float, Strict(), Field(ge=0.01, le=10_000, allow_inf_nan=False,
                                             description="the target weight, in `unit`")]
    unit: Annotated[Unit | None, Field(description=(
        "the unit the client means; it must be the server's default_unit (else 409/2101)"))] = None


@dataclass(slots=True)
class WeightPoint:
    record_id: int
    date: dt.date
    value: float


@dataclass(slots=True)
class WeightStats:
    count: int
    first: float | None
    last: float | None
    min: float | None
    max: float | None
    mean: float | None
    change: float | None  # last - first


@dataclass(slots=True)
class WeightTarget:
    weight: float
    unit: Unit
    updated_at: dt.datetime


@dataclass(slots=True)
class WeightSeries:
    pet_id: int
    unit: Unit
    points: list[WeightPoint]
    stats: WeightStats
    target: WeightTarget | None


def convert(weight: float, *, source: Unit, target: Unit) -> float:
    """A weight in another unit (rounded to grams' precision: no float noise in answers)."""
    if source == target:
        return weight
    return round(weight * KG_PER_LB if source == "lb" else weight / KG_PER_LB, 3)


def statistics(points: list[WeightPoint]) -> WeightStats:
    """Count, first, last, min, max, mean and change (last - first) of a series in date order."""
    if not points:
        return WeightStats(0, None, None, None, None, None, None)
    values = [p.value for p in points]
    return WeightStats(len(values), values[0], values[-1], min(values), max(values),
                       round(sum(values) / len(values), 6), round(values[-1] - values[0], 6))
