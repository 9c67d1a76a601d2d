"""The RFC 5545 document of a calendar feed, written by the `icalendar` package: a VTIMEZONE for UTC, then one
all-day event per open due item, with a UID that stays the record's, and an alarm the day before."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable

import icalendar

from server.plugins.reminders.models import FeedItem, Reminder

PRODID = "-//pet-api//reminders//EN"
NAME = "Pet care"
REFRESH = dt.timedelta(hours=1)  # how often subscribers should fetch it again (a hint: clients choose)
KINDS = {"vaccination": "vaccination", "vet_visit": "vet visit", "weight": "weigh-in", "medication": "medication"}


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC)


def summary(item: Reminder) -> str:
    """"Rex: vaccination (rabies booster)": the pet's name, what is due, and the note when there is one."""
    text = f"{item.pet.name}: {KINDS[item.kind]}"
    return f"{text} ({item.note})" if item.note else text


def shown(value: float) -> str:
    """A record's value as the API gives it, every digit of its shortest round-trip form, written out without an
    exponent for people (1e-07 as 0.0000001) and a whole number without ".0"."""
    return format(decimal.Decimal(repr(value)), "f").removesuffix(".0")


def event(entry: FeedItem) -> icalendar.Event:
    """The all-day VEVENT of one open due item; its UID follows the record, its SEQUENCE, LAST-MODIFIED and
    DTSTAMP the record and its pet (whose name it shows)."""
    item = entry.item
    assert item.due_date is not None
    vevent = icalendar.Event()
    vevent.add("uid", f"record-{item.id}@pet-api")
    vevent.add("dtstamp", _utc(entry.revised_at))  # the feed's content, not the fetch: same bytes until a change
    vevent.add("dtstart", item.due_date)
    vevent.add("dtend", item.due_date + dt.timedelta(days=1))
    vevent.add("summary", summary(item))
    details = [f"Recorded {item.date.isoformat()}"]
    if item.value is not None:
        details.append(f"Value: {shown(item.value)}")
    vevent.add("description", "\n".join(details))
    vevent.add("categories", [KINDS[item.kind]])
    vevent.add("transp", "TRANSPARENT")  # a reminder, not a busy day
    vevent.add("sequence", entry.sequence)
    vevent.add("last-modified", _utc(entry.revised_at))
    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", summary(item))
    alarm.add("trigger", -dt.timedelta(days=1))
    vevent.add_component(alarm)
    return vevent


def utc_zone() -> icalendar.Timezone:
    """A VTIMEZONE for UTC: RFC 5545 3.6 wants at least one component in a calendar, and a feed with nothing due
    has no event. An unreferenced zone changes nothing a client shows (the events are all-day dates)."""
    zone = icalendar.Timezone()
    zone.add("tzid", "UTC")
    standard = icalendar.TimezoneStandard()
    standard.add("dtstart", dt.datetime(1970, 1, 1))
    standard.add("tzoffsetfrom", dt.timedelta(0))
    standard.add("tzoffsetto", dt.timedelta(0))
    standard.add("tzname", "UTC")
    zone.add_component(standard)
    return zone


def feed(items: Iterable[FeedItem]) -> bytes:
    """The whole VCALENDAR: the calendar's name and refresh hints, a VTIMEZONE for UTC (so that it always holds a
    component), then one event per item."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", NAME)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", icalendar.vDuration(REFRESH))  # an X- property is text unless given its type
    cal.add_component(utc_zone())
    for item in items:
        cal.add_component(event(item))
    document: bytes = cal.to_ical()
    return document
