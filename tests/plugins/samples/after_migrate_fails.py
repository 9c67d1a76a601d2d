"""A plugin whose after_migrate raises (its own bug, not a statement the database refused)."""

from typing import Any

from server.plugins import Plugin


async def _after_migrate(db: Any) -> list[str]:
    raise ValueError("this backfill fails on purpose")


PLUGIN = Plugin(name="after_migrate_fails", routes=[], after_migrate=_after_migrate)
