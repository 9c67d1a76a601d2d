"""The plugin's SQL: the series read from the core's records (never written), targets in its own table.

A weight is a record of kind "weight" whose `value` is the weight in the plugin's `default_unit`; records
without a value are not points. The caller has passed the core's access rule (find_pet) first."""

from __future__ import annotations

import datetime as dt
from functools import cache

import orjson

from pet_api_weight.models import Unit, WeightPoint, WeightSeries, WeightTarget, convert, statistics
from server.db import Dialect, Executor, IntegrityViolation, column
from server.errors import NotFound
from server.services import json_row, utcnow


@cache
def _points_sql(dialect: Dialect) -> str:
    return (f"SELECT {json_row('id, date, ' + dialect.real('value'))} FROM records"  # noqa: S608
            " WHERE pet_id = %s AND kind = 'weight' AND value IS NOT NULL ORDER BY date, id")


@cache
def _upsert_target_sql(dialect: Dialect) -> str:
    return ("INSERT INTO weight_targets (pet_id, weight, unit, updated_at) VALUES (%s, %s, %s, %s)"  # noqa: S608
            f"{dialect.on_conflict_update('pet_id')} weight = {dialect.inserted('weight')},"
            f" unit = {dialect.inserted('unit')}, updated_at = {dialect.inserted('updated_at')}")


def _point(text: str) -> WeightPoint:
    record_id, day, value = orjson.loads(text)
    return WeightPoint(record_id, dt.date.fromisoformat(day), float(value))  # SQLite's exact real is text


async def weight_points(db: Executor, *, pet_id: int) -> list[WeightPoint]:
    """The pet's weights, oldest date first (records of one day in the order they were added)."""
    rows = await db.fetch_all(_points_sql(db.dialect), (pet_id,))
    return [_point(column(r[0], str)) for r in rows]


async def get_target(db: Executor, *, pet_id: int, unit: Unit) -> WeightTarget | None:
    """The pet's target weight in `unit`, or None when none is set."""
    row = await db.fetch_one(
        f"SELECT {json_row(db.dialect.real('weight') + ', unit, updated_at')} FROM weight_targets"  # noqa: S608
        " WHERE pet_id = %s", (pet_id,))
    if row is None:
        return None
    weight, stored_unit, updated_at = orjson.loads(column(row[0], str))
    return WeightTarget(convert(float(weight), source=stored_unit, target=unit), unit,
                        dt.datetime.fromisoformat(updated_at))


async def set_target(db: Executor, *, pet_id: int, weight: float, unit: Unit) -> WeightTarget:
    """Set (or replace) the pet's target weight; 404 if the pet vanished meanwhile."""
    now = utcnow()
    try:
        await db.execute(_upsert_target_sql(db.dialect), (pet_id, weight, unit, now))
    except IntegrityViolation:
        raise NotFound() from None
    return WeightTarget(weight, unit, now)


async def delete_target(db: Executor, *, pet_id: int) -> None:
    """Remove the pet's target weight, if it has one (idempotent: 404 stays the answer for a pet, not a target)."""
    await db.execute("DELETE FROM weight_targets WHERE pet_id = %s", (pet_id,))


async def weight_series(db: Executor, *, pet_id: int, unit: Unit) -> WeightSeries:
    """The pet's weight series with its statistics and target."""
    points = await weight_points(db, pet_id=pet_id)
    return WeightSeries(pet_id, unit, points, statistics(points), await get_target(db, pet_id=pet_id, unit=unit))
