"""GET /v1/sync (delta sync with an opaque cursor) and GET /v1/events (the same changes as server-sent events)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import tornado.iostream

from server.auth import Principal, require_scopes
from server.declare import operation
from server.errors import APIError, ServiceUnavailable
from server.handlers.base import BaseHandler, dumps, header, preferred_language
from server.plugins.sync.cursor import Position
from server.plugins.sync.hub import Stream
from server.plugins.sync.models import EventsQuery, SyncChangeModel, SyncPageModel, SyncQuery
from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import SyncChange, SyncPage, log_head, read_changes, visible_pet_ids

EVENT_TYPE = "text/event-stream; charset=utf-8"
PAGE = 500  # changes per read while a stream catches up


class SyncBase(BaseHandler):
    def position(self, user: Principal, cursor: str | None, field: str = "cursor") -> Position | None:
        return None if cursor is None else self.application.sync_cursors.load(user.user_id, cursor, field=field)

    async def page(self, user: Principal, position: Position | None, limit: int) -> SyncPage:
        db = self.application.db
        page = await read_changes(db, user_id=user.user_id, position=position, limit=limit,
                                  records=any(p.name == "records" for p in self.application.plugins))
        # Pets as their GET answers them: what other plugins add (photos: `photo`) included.
        await self.application.pet_views.complete(db, [c.data for c in page.changes if c.type == "pet" and c.data])
        return page

    def cursor(self, user: Principal, position: Position) -> str:
        return self.application.sync_cursors.dump(user.user_id, position)


class SyncHandler(SyncBase):
    @require_scopes("pets:read")
    @operation(summary="What changed in the caller's pets and records since a cursor (everything, without one)",
               query=SyncQuery, response=SyncPageModel, errors=(410,))
    async def get(self, *, query: SyncQuery) -> None:
        user = self.current_user
        position = self.position(user, query.cursor)
        await sequence(self.application.db, replay=False)  # the caller's own commits are in the log it reads
        found = await self.page(user, position, query.limit)
        self.send({"changes": [c.as_json() for c in found.changes], "cursor": self.cursor(user, found.position),
                   "has_more": found.has_more})


@dataclass(frozen=True, slots=True)
class Rendered:
    """A page as event-stream bytes: rendered once for all the streams of a user at one position."""

    position: Position
    has_more: bool
    events: bytes


class EventsHandler(SyncBase):
    stream: Stream | None = None
    client_gone = False

    @require_scopes("pets:read")
    @operation(summary="The caller's changes as server-sent events: what follows the cursor (Last-Event-ID), then "
                       "live changes", query=EventsQuery, response=SyncChangeModel, errors=(410,),
               media_type="text/event-stream",
               schema={"type": "string", "description": "id: <cursor>, event: change, data: one sync change"})
    async def get(self, *, query: EventsQuery) -> None:
        user, hub = self.current_user, self.application.events
        last_id = header(self.request, "Last-Event-ID")
        position = self.position(user, last_id, "Last-Event-ID") if last_id else self.position(user, query.cursor)
        if hub.closing:
            raise ServiceUnavailable("server is restarting", headers={"Retry-After": "1"})
        await sequence(self.application.db, replay=False)  # the listing's head covers what committed before
        # Registered before the first read, so no wake-up can fall between the two.
        head = hub.head if hub.streams else await log_head(self.application.db)
        stream = self.stream = hub.open(user, set(await self._pets(user)), head)
        stream.pending = False  # this first read sees whatever the log holds now
        try:  # 400/410 before the stream starts: the usual JSON
            first = await self._read(user, position)
        except BaseException:
            hub.close(stream)
            raise
        self.set_header("Content-Type", EVENT_TYPE)
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx: pass each event on at once
        if self.request.method == "HEAD":  # the answer's head only: no stream to keep open
            hub.close(stream)
            self.finish()
            return
        self.write(b"retry: 1000\n\n")
        try:
            await self._follow(user, stream, first)
        except tornado.iostream.StreamClosedError:
            self.client_gone = True
        finally:
            hub.close(stream)
        if not self._finished and not self.client_gone:
            self.finish()

    async def _pets(self, user: Principal) -> set[int]:
        """The pets whose changes wake the user's streams: read once for all of them opening at once."""
        hub = self.application.events
        return await hub.shared(("pets", user.user_id, hub.head),
                                lambda: visible_pet_ids(self.application.db, user_id=user.user_id))

    async def _read(self, user: Principal, position: Position | None) -> Rendered:
        async def fetch() -> Rendered:
            page = await self.page(user, position, PAGE)
            return Rendered(page.position, page.has_more, b"".join(self._event(user, c) for c in page.changes))

        hub = self.application.events
        # Keyed by the poller's head too: a stream woken by a change must not join a read begun before it.
        rendered: Rendered = await hub.shared(("page", user.user_id, position, hub.head), fetch)
        return rendered

    async def _follow(self, user: Principal, stream: Stream, page: Rendered) -> None:
        """Write pages as they come; wait for the hub's wake-up (a change for this user, a heartbeat, the end)."""
        hub = self.application.events
        position = page.position
        stream.pending = page.has_more
        self.write(page.events)
        while True:
            await self.flush()
            await stream.wait()
            if stream.ended:
                break
            if stream.beat_due:
                stream.beat_due = False
                self.write(b":\n\n")
            if stream.pending:
                stream.pending = False
                try:
                    page = await self._read(user, position)
                except ServiceUnavailable:  # the pool is busy or the database away: try again next round
                    stream.pending = True
                    await asyncio.sleep(hub.poll_seconds)
                    continue
                except APIError as exc:  # e.g. 410: the log was purged past this stream while it lagged
                    stream.end(exc)
                    break
                self.write(page.events)
                position, stream.pending = page.position, stream.pending or page.has_more
        if stream.error is not None:
            self.write(self._error_event(stream.error))

    def _event(self, user: Principal, change: SyncChange) -> bytes:
        return b"id: %s\nevent: change\ndata: %s\n\n" % (self.cursor(user, change.position).encode(),
                                                          dumps(change.as_json()))

    def _error_event(self, error: APIError) -> bytes:
        body = {"error_code": error.code,
                "message": self._message(error, preferred_language(header(self.request, "Accept-Language"))),
                "request": f"{self.request.method} {self.request.path}"}
        return b"event: error\ndata: %s\n\n" % dumps(body)

    def on_connection_close(self) -> None:
        self.client_gone = True
        if self.stream is not None:
            self.stream.end()
