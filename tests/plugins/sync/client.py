"""What a sync client does with the changes it receives (shared by the sync and event tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from server.changes import Change
from server.services import utcnow


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


class EventStream:
    """A raw HTTP/1.0 client of GET /v1/events: the answer's head, then one server-sent event (or comment) at a
    time. HTTP/1.0, so the body is the stream itself (no chunked framing) and ends when the server closes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int,
                 headers: dict[str, str]) -> None:
        self.reader, self.writer, self.status, self.headers = reader, writer, status, headers

    @classmethod
    async def open(cls, base_url: str, path: str = "/v1/events", *, token: str | None = None,
                   headers: dict[str, str] | None = None) -> EventStream:
        host, _, port = base_url.removeprefix("http://").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        lines = [f"GET {path} HTTP/1.0", f"Host: {host}", "Accept: text/event-stream"]
        lines += [f"Authorization: Bearer {token}"] if token else []
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        status = int(head[0].split()[1])
        fields = dict(line.split(": ", 1) for line in head[1:] if line)
        return cls(reader, writer, status, {k.lower(): v for k, v in fields.items()})

    async def next(self, wait: float | None = 10) -> dict[str, Any]:
        """The next event as {"id", "event", "data"} (data decoded), or {"comment": text}; {} at the end. Without
        `wait`, no timeout (wait_for costs a task per event: 30,000 of them in the scale test's client)."""
        try:
            read = self.reader.readuntil(b"\n\n")
            block = await (read if wait is None else asyncio.wait_for(read, wait))
        except asyncio.IncompleteReadError as end:
            assert end.partial == b"", end.partial
            return {}
        event: dict[str, Any] = {}
        for line in block.decode().strip("\n").split("\n"):
            name, _, value = line.partition(":")
            if name == "":
                event["comment"] = value.strip()
            elif name == "data":
                event["data"] = orjson.loads(value.strip())
            else:
                event[name] = value.strip()
        return event

    async def next_change(self, wait: float = 10) -> dict[str, Any]:
        """The next event that is not a comment (or the retry hint)."""
        while True:
            event = await self.next(wait)
            if "comment" not in event and set(event) != {"retry"}:
                return event

    async def body(self) -> Any:
        """The whole body of an answer that is not a stream (JSON)."""
        return orjson.loads(await self.reader.read())

    def close(self) -> None:
        self.writer.close()


async def share(app: Any, *, pet_id: int, user_id: int, owner_id: int, role: str = "viewer") -> None:
    """A membership as the sharing service writes it: the row and its Change, in one transaction."""

    async def write(tx: Any) -> None:
        await tx.execute("INSERT INTO pet_members (pet_id, user_id, role, since) VALUES (%s, %s, %s, %s)",
                         (pet_id, user_id, role, utcnow()))
        await app.changes.emit(tx, Change("member", "shared", user_id, owner_id, pet_id=pet_id))

    await app.db.run_transaction(write)


async def unshare(app: Any, *, pet_id: int, user_id: int, owner_id: int) -> None:
    async def write(tx: Any) -> None:
        await tx.execute("DELETE FROM pet_members WHERE pet_id = %s AND user_id = %s", (pet_id, user_id))
        await app.changes.emit(tx, Change("member", "removed", user_id, owner_id, pet_id=pet_id))

    await app.db.run_transaction(write)
