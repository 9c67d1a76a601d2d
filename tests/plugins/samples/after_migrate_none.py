"""A plugin whose after_migrate forgets to return its lines (None, not a list)."""

from typing import Any

from server.plugins import Plugin


async def _after_migrate(db: Any) -> Any:
    await db.fetch_one("SELECT 1")


PLUGIN = Plugin(name="after_migrate_none", routes=[], after_migrate=_after_migrate)
