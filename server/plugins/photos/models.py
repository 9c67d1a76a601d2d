"""The photos' settings, query and the metadata object they answer with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.validation import Query

MIB = 1024 * 1024
Size = Literal["256", "1024", "original"]


class PhotoSettings(BaseModel):
    """profile `plugin_settings: {photos: {...}}` or PET_API_PHOTOS__<KEY>."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    photo_max_bytes: Annotated[int, Field(ge=1024, le=64 * MIB, description=(
        "larger upload bodies answer 413/1007 (read and dropped, never held)"))] = 8 * MIB
    photo_max_pixels: Annotated[int, Field(ge=1, le=500_000_000, description=(
        "images declaring more pixels answer 400/1001 before any is decoded (decompression bombs)"))] = 40_000_000
    photo_max_side: Annotated[int, Field(ge=256, le=16384, description=(
        "the stored original's longest side, in pixels"))] = 4096
    photo_workers: Annotated[int, Field(ge=1, le=64, description=(
        "processes that decode and encode images, per worker process (off its event loop and its GIL, at a lower "
        "CPU priority); memory is bounded by this times the largest image"))] = 1
    photo_cpu_share: Annotated[float, Field(gt=0, le=1, description=(
        "the share of one CPU each photo process keeps busy on average: after an image that took t seconds, the "
        "next starts t * (1/share - 1) seconds later (its upload is answered at once), so reads keep their latency "
        "during a burst of uploads; 1: no pause"))] = 0.2
    photo_queue: Annotated[int, Field(ge=0, le=1024, description=(
        "uploads that may wait for a photo process, per worker process; one more answers 503/1008 at once"))] = 32
    photo_queue_seconds: Annotated[float, Field(gt=0, le=3600, description=(
        "seconds an upload may wait for a photo process; longer answers 503/1008 with Retry-After and stores "
        "nothing, before a client's own timeout would give up on an upload still to be stored"))] = 30.0
    photo_quality: Annotated[int, Field(ge=30, le=95, description="JPEG and WebP quality of the stored images")] = 85
    photo_cache_seconds: Annotated[int, Field(ge=0, le=31_536_000, description=(
        "Cache-Control max-age of a download by its unversioned URL (a URL with the current v= is cached a year)"))
    ] = 300


class PhotoQuery(Query):
    size: Annotated[Size, Field(description="which rendition: 256 or 1024 px on the longest side, or the original "
                                            "(at most photo_max_side)")] = "original"
    v: Annotated[str | None, Field(max_length=64, pattern=r"^[0-9a-f]{1,64}$", description=(
        "the version in the photo's `sizes` URLs: with the current one, the answer may be cached for a year"))] = None


@dataclass(slots=True)
class Photo:
    etag: str  # the ETag (quoted), for If-Match on PUT and DELETE
    content_type: str
    width: int  # of the stored original
    height: int
    sizes: dict[str, str]  # "256", "1024", "original" -> URL
    updated_at: dt.datetime
