"""What a sync client does with the changes it receives (shared by the sync and event tests)."""

from __future__ import annotations

from typing import Any


def apply(state: dict[tuple[str, int], Any], changes: list[dict[str, Any]]) -> None:
    """What a client does with changes: upserts replace, deletes remove (a pet's delete takes its records)."""
    for change in changes:
        assert set(change) == {"type", "id", "op", "version", "data"}
        key = (change["type"], change["id"])
        if change["op"] == "upsert":
            assert change["data"]["id"] == change["id"]
            state[key] = change["data"]
        else:
            assert change["op"] == "delete" and change["data"] is None
            state.pop(key, None)
            if change["type"] == "pet":
                for other in [k for k, v in state.items() if k[0] == "record" and v["pet_id"] == change["id"]]:
                    del state[other]
