"""GET /v1/users/me/export: one JSON document of everything the account holds, streamed section by section.

Each enabled plugin with an `export` hook contributes (section, item) pairs; the items of a section form one array
of `data.sections`, and each section the plugin declares (`export_sections`) is there, [] when empty. The document
is written a few items at a time and flushed, so a large account is never in memory at once. Photos belong to the
photos plugin's section (inline base64 of the stored original).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import orjson

from server.db import Executor, column, datetime_column
from server.plugins import Plugin
from server.plugins.accounts.services.users import get_user
from server.services import utcnow

FORMAT = "pet-api-export/1"
FLUSH_EVERY = 200  # items written between flushes


async def export_account(db: Executor, user_id: int) -> AsyncIterator[tuple[str, Any]]:
    """The accounts plugin's part: the profile, then the open and ended sessions (never a token)."""
    user = await get_user(db, user_id=user_id)
    yield "account", {**dataclasses.asdict(user.public()), "language": user.language}
    rows = await db.fetch_all("SELECT id, device, address, created_at, last_used_at, ended_at_ms FROM sessions"
                              " WHERE user_id = %s ORDER BY id", (user_id,))
    for session_id, device, address, created, last_used, ended in rows:
        yield "sessions", {"id": column(session_id, int), "device": device, "address": address,
                           "created_at": datetime_column(created), "last_used_at": datetime_column(last_used),
                           "ended": ended is not None}


class SectionOrder(Exception):
    """A plugin yielded a section's items apart (the document would name the section twice)."""


async def write_export(db: Executor, plugins: Sequence[Plugin], *, user_id: int, dumps: Callable[[Any], bytes],
                       write: Callable[[bytes], None], flush: Callable[[], Awaitable[None]]) -> int:
    """Write the envelope and every plugin's sections through write(), flushing as it goes; the item count."""
    head = {"format": FORMAT, "exported_at": utcnow(), "user_id": user_id}
    write(b'{"code":200,"data":' + dumps(head)[:-1] + b',"sections":{')
    done: set[str] = set()
    current: str | None = None
    count = 0

    def open_section(section: str) -> None:
        nonlocal current
        write((b"]," if current is not None else b"") + orjson.dumps(section) + b":[")
        done.add(section)
        current = section

    for plugin in plugins:
        if plugin.export is None:
            continue
        async for section, item in plugin.export(db, user_id):
            if section != current:
                if section in done:
                    raise SectionOrder(f"plugin {plugin.name!r} yielded section {section!r} twice apart")
                open_section(section)
            else:
                write(b",")
            write(dumps(item))
            count += 1
            if count % FLUSH_EVERY == 0:
                await flush()
        for section in plugin.export_sections:  # those it had no item of: present, empty
            if section not in done:
                open_section(section)
    write((b"]" if current is not None else b"") + b'}},"message":"ok"}')
    return count
