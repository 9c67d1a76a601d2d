"""Sync cursors: a position in the change log (or in the first listing), signed so a client cannot forge one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from server.auth import SIGNING
from server.errors import InvalidParameter

SALT = "pet-api.sync-cursor"
SNAPSHOT_TYPES = ("pet", "record")  # the first listing's order: pets, then their records


@dataclass(frozen=True, slots=True)
class Position:
    """Where a client stands.

    In the log (snapshot None): every change up to `seq` was delivered, except, when `key` is set, the items of
    change `seq` after `key` (a member's change carries the pet and all its records, ordered by key).
    In the first listing (snapshot "pet" or "record"): the objects of that type up to id `after_id` were sent;
    `seq` is the log's head when the listing began, where the delta sync continues."""

    seq: int
    key: int | None = None
    snapshot: str | None = None
    after_id: int = 0


class Cursors:
    """Opaque cursor text <-> Position, bound to the user it was issued to."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.serializer = URLSafeSerializer(list(keys), salt=SALT, **SIGNING)

    def dump(self, user_id: int, position: Position) -> str:
        """The cursor text of a position."""
        if position.snapshot is None:
            payload: list[Any] = [user_id, position.seq, position.key]
        else:
            payload = [user_id, position.seq, position.snapshot, position.after_id]
        return str(self.serializer.dumps(payload))

    def load(self, user_id: int, text: str, *, field: str = "cursor") -> Position:
        """The position a cursor names, or 400/1001 naming the field (tampered, garbled or another user's)."""
        try:
            payload = self.serializer.loads(text) if text.isascii() else None
        except BadData:
            payload = None
        position = _position(payload, user_id)
        if position is None:
            raise InvalidParameter("invalid cursor", errors=[{"field": field, "message": "not a cursor of this API"}])
        return position


def _position(payload: Any, user_id: int) -> Position | None:
    if not isinstance(payload, list) or len(payload) not in (3, 4) or payload[0] != user_id:
        return None
    if not all(type(v) is int and v >= 0 for v in payload[1:] if v is not None and not isinstance(v, str)):
        return None
    if len(payload) == 3 and type(payload[1]) is int and (payload[2] is None or type(payload[2]) is int):
        return Position(payload[1], payload[2])
    if len(payload) == 4 and type(payload[1]) is int and payload[2] in SNAPSHOT_TYPES and type(payload[3]) is int:
        return Position(payload[1], snapshot=payload[2], after_id=payload[3])
    return None
