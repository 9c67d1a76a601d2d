"""GET /v1/reminders, the caller's calendar feed (POST/DELETE /v1/users/me/calendar) and the feed itself."""

from __future__ import annotations

import hashlib

from server.auth import require_scopes
from server.declare import operation
from server.handlers.base import BaseHandler
from server.plugins.reminders.calendar import feed
from server.plugins.reminders.models import CalendarFeed, Reminder, ReminderQuery
from server.plugins.reminders.services import create_feed, delete_feed, feed_owner, list_reminders, open_items
from server.services import page

CALENDAR_TYPE = "text/calendar; charset=utf-8"
CALENDAR_SCHEMA = {"type": "string", "description": "an RFC 5545 VCALENDAR: one all-day VEVENT per open due item"}


class RemindersHandler(BaseHandler):
    @require_scopes("pets:read")
    @operation(summary="Open due items of the caller's pets (member of, any role), overdue first, then by date",
               query=ReminderQuery, response=list[Reminder], paginated=True)
    async def get(self, *, query: ReminderQuery) -> None:
        items, total = await list_reminders(self.application.db, user_id=self.current_user.user_id,
                                            within_days=query.within_days, limit=query.limit, offset=query.offset)
        self.send(items, page=page(query.limit, query.offset, total))


class CalendarFeedHandler(BaseHandler):
    @require_scopes("users:me")
    @operation(summary="Create the caller's calendar feed URL, or replace it (the old URL stops working)",
               status=201, response=CalendarFeed)
    async def post(self) -> None:
        feed_url = await create_feed(self.application.db, user_id=self.current_user.user_id)
        self.set_header("Cache-Control", "no-store")  # the URL holds the feed's token: a credential
        self.send(feed_url, 201)

    @require_scopes("users:me")
    @operation(summary="Revoke the caller's calendar feed URL (404 when there is none)", response=None, errors=(404,))
    async def delete(self) -> None:
        await delete_feed(self.application.db, user_id=self.current_user.user_id)
        self.send(None)


class CalendarHandler(BaseHandler):
    """No Authorization: the token in the path is the credential (calendar apps cannot send a header)."""

    @operation(summary="The calendar feed (iCalendar): one all-day event per open due item of the feed owner's pets",
               media_type="text/calendar", schema=CALENDAR_SCHEMA, errors=(503,), cached=True,
               headers={"ETag": "tag of this feed, for If-None-Match", "Cache-Control": "private, no-cache"})
    async def get(self, token: str) -> None:
        db = self.application.db
        body = feed(await open_items(db, user_id=await feed_owner(db, token=token)))
        self.set_header("Content-Type", CALENDAR_TYPE)
        self.set_header("Cache-Control", "private, no-cache")  # the URL is a credential: no shared cache
        self.set_header("ETag", f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
        else:
            self.finish(body)
