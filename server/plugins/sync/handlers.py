"""GET /v1/sync (delta sync with an opaque cursor) and GET /v1/events (the same changes as server-sent events)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import tornado.iostream

from server.auth import Principal, require_scopes
from server.declare import operation
from server.errors import APIError, ServiceUnavailable
from server.handlers.base import BaseHandler, dumps, header, preferred_language
from server.plugins.sync.cursor import Position
from server.plugins.sync.hub import Rendered
from server.plugins.sync.models import (
    LAST_EVENT_ID,
    LAST_EVENT_ID_PARAMETER,
    EventsQuery,
    SyncChangeModel,
    SyncPageModel,
    SyncQuery,
)
from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import SyncPage, read_changes

if TYPE_CHECKING:
    from server.app import PetAPI

EVENT_TYPE = "text/event-stream; charset=utf-8"
PAGE = 500  # changes per read while a stream catches up


async def read_page(app: PetAPI, user: Principal, position: Position | None, limit: int) -> SyncPage:
    """A page of the user's changes after `position`, each pet as its GET answers it."""
    page = await read_changes(app.db, user_id=user.user_id, position=position, limit=limit,
                              records=any(p.name == "records" for p in app.plugins))
    # Pets as their GET answers them: what other plugins add (photos: `photo`) included.
    await app.pet_views.complete(app.db, [c.data for c in page.changes if c.type == "pet" and c.data])
    return page


class SyncBase(BaseHandler):
    def position(self, user: Principal, cursor: str | None, field: str = "cursor") -> Position | None:
        return None if cursor is None else self.application.sync_cursors.load(user.user_id, cursor, field=field)


class SyncHandler(SyncBase):
    @require_scopes("pets:read")
    @operation(summary="What changed in the caller's pets and records since a cursor (everything, without one)",
               query=SyncQuery, response=SyncPageModel, errors=(410,))
    async def get(self, *, query: SyncQuery) -> None:
        user = self.current_user
        position = self.position(user, query.cursor)
        await sequence(self.application.db, replay=False)  # the caller's own commits are in the log it reads
        found = await read_page(self.application, user, position, query.limit)
        cursor = self.application.sync_cursors.dump(user.user_id, found.position)
        self.send({"changes": [c.as_json() for c in found.changes], "cursor": cursor,
                   "has_more": found.has_more})


class EventPages:
    """What the hub writes: a user's page as event-stream bytes, an error event."""

    def __init__(self, app: PetAPI) -> None:
        self.app = app

    async def page(self, user: Principal, position: Position | None) -> Rendered:
        found = await read_page(self.app, user, position, PAGE)
        dump = self.app.sync_cursors.dump
        return Rendered(found.position, found.has_more, b"".join(
            b"id: %s\nevent: change\ndata: %s\n\n" % (dump(user.user_id, c.position).encode(), dumps(c.as_json()))
            for c in found.changes))

    def error(self, error: APIError, language: str, request: str) -> bytes:
        body = {"error_code": error.code, "message": BaseHandler._message(error, language), "request": request}
        return b"event: error\ndata: %s\n\n" % dumps(body)


class EventsHandler(SyncBase):
    @require_scopes("pets:read")
    @operation(summary="The caller's changes as server-sent events: what follows the cursor (Last-Event-ID), then "
                       "live changes", query=EventsQuery, response=SyncChangeModel, errors=(410, 503),
               media_type="text/event-stream",
               schema={"type": "string", "description": "id: <cursor>, event: change, data: one sync change"},
               request_headers=[LAST_EVENT_ID_PARAMETER])
    async def get(self, *, query: EventsQuery) -> None:
        user, hub, db = self.current_user, self.application.events, self.application.db
        last_id = header(self.request, LAST_EVENT_ID)
        position = self.position(user, last_id, LAST_EVENT_ID) if last_id else self.position(user, query.cursor)
        if hub.closing:
            raise ServiceUnavailable("server is restarting", headers={"Retry-After": "1"})
        if hub.renderer is None:
            hub.renderer = EventPages(self.application)
        renderer = hub.renderer
        await sequence(db, replay=False)  # the stream's head covers what committed before it opened
        head = await hub.subscribe(db, user.user_id)  # before the first read: no change falls in between
        opened = False
        try:  # 400/410 before the stream starts: the usual JSON
            # Keyed by the head too: a stream opened after a change must not join a read begun before it.
            first = await hub.shared(("page", user.user_id, position, head), lambda: renderer.page(user, position))
            self.check_if_match(None)  # a stream has no tag; its head goes out before finish() would check
            self.set_header("Content-Type", EVENT_TYPE)
            self.set_header("Cache-Control", "no-cache")
            self.set_header("X-Accel-Buffering", "no")  # nginx: pass each event on at once
            if self.request.method == "HEAD":  # the answer's head only: no stream to keep open
                # The GET's head, so no Content-Length (finish() alone adds "0": RFC 9110 8.6 forbids a length
                # the GET would not send, and its stream has none).
                await self.flush()
                self.finish()
                return
            self.write(b"retry: 1000\n\n" + first.events)
            await self.flush()
            if hub.closing:  # the drain began meanwhile
                self.finish()
                return
            # The stream is the hub's from here: no handler, request or coroutine stays behind (its memory).
            self.application.log_request(self)  # its access line and metrics now: it never finishes as a request
            language = preferred_language(header(self.request, "Accept-Language"))
            request = sys.intern(f"{self.request.method} {self.request.path}")
            chunked = self.request.version == "HTTP/1.1"  # tornado chunks a body of unknown length to HTTP/1.1
            conn = self.detach()
            if conn.closed():  # the client left while its first page went out
                return
            hub.open(conn, user, first, head, chunked=chunked, language=language, request=request)
            opened = True
        except tornado.iostream.StreamClosedError:  # the client left before its first page
            pass
        finally:
            if not opened:
                hub.unsubscribe(user.user_id)
