"""The calendar feed: created, rotated and revoked through /v1/users/me/calendar; the .ics parses with Python's
icalendar and with ical.js from npm, has one all-day event per open due item with stable UIDs, follows the
records, stops working when revoked or when the credentials change, and its token is in no log line."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import icalendar
import orjson
import pytest

from server.plugins.reminders.calendar import feed
from tests.factories import (
    PASSWORD,
    assert_error,
    both_backends,
    create_pet,
    create_user,
    serving,
    token_for,
    user_with_token,
)
from tests.plugins.reminders.helpers import day, due_item, share

ROOT = Path(__file__).resolve().parents[3]
NPM_PREFIX = ROOT / "var" / "npm"  # a cache of the test's own npm install (var/ is not versioned)
ICAL_JS = "ical.js@2.2.1"
FEED_URL = re.compile(r"/v1/calendar/([A-Za-z0-9_-]{43})\.ics")
FEED_ROUTE = "/v1/calendar/{token}.ics"


@pytest.fixture(scope="session")
def ical_js() -> Path:
    """ical.js, installed from the npm registry into var/npm on first use."""
    module = NPM_PREFIX / "node_modules" / "ical.js" / "dist" / "ical.js"
    if not module.is_file():
        assert shutil.which("npm") and shutil.which("node"), "the feed test needs node and npm"
        subprocess.run(["npm", "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", ICAL_JS],
                       check=True, capture_output=True, timeout=300)
    return module


def parse_with_ical_js(module: Path, body: bytes) -> dict[str, Any]:
    script = Path(__file__).with_name("parse_ical.mjs")
    done = subprocess.run(["node", str(script), str(module)], input=body, capture_output=True, check=True,
                          timeout=60)
    parsed: dict[str, Any] = orjson.loads(done.stdout)
    return parsed


def events(body: bytes) -> dict[str, icalendar.Event]:
    """The feed's events by UID, parsed with Python's icalendar."""
    calendar = icalendar.Calendar.from_ical(body)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


async def hour_old_event(api: Any, app: Any, token: str, *, pet_id: int,
                         record_id: int) -> tuple[str, str, dt.datetime]:
    """The record and its pet last changed an hour ago (whole seconds, as the feed's stamps), a new feed: its URL,
    the record's event UID and that hour-old instant."""
    hour_ago = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    for table, row_id in (("records", record_id), ("pets", pet_id)):
        await app.db.execute(f"UPDATE {table} SET updated_at = %s WHERE id = %s",  # noqa: S608
                             (hour_ago.replace(tzinfo=None), row_id))
    url, _ = await new_feed(api, token)
    return url, f"record-{record_id}@pet-api", hour_ago


async def new_feed(api: Any, token: str) -> tuple[str, str]:
    created = await api.post("/v1/users/me/calendar", token=token)
    assert created.status == 201, created.body
    url = created.body["data"]["url"]
    match = FEED_URL.fullmatch(url)
    assert match, url
    assert set(created.body["data"]) == {"url", "created_at"}
    return url, match.group(1)


@both_backends
@pytest.mark.gen_test(timeout=120)
async def test_the_feed_parses_with_two_parsers_and_follows_the_records(api, app, ical_js):
    alice, token = await user_with_token(app, nickname="Alice", verified=True)
    bob, bob_token = await user_with_token(app)
    rex = await create_pet(api, token, name="Rex")
    mia = await create_pet(api, bob_token, name="Mia, the cat", species="cat")
    await share(api, mia["id"], (bob, bob_token), (alice, token), "caretaker")
    overdue = await due_item(api, token, rex["id"], -10, note="rabies booster")
    far = await due_item(api, token, rex["id"], 200, kind="medication")  # the feed holds every open item
    shared = await due_item(api, bob_token, mia["id"], 3, kind="vet_visit")
    await due_item(api, token, rex["id"], 1, done=True)
    await due_item(api, token, rex["id"], None)
    stranger = await create_pet(api, bob_token, name="Bob's own")
    await due_item(api, bob_token, stranger["id"], 2)

    url, feed_token = await new_feed(api, token)
    stored = await app.db.fetch_one("SELECT token_hash FROM calendar_feeds WHERE user_id = %s", (alice.id,))
    assert stored is not None and stored[0] == hashlib.sha256(feed_token.encode()).hexdigest()

    fetched = await api.get(url)  # no Authorization: the token is the credential
    assert fetched.status == 200, fetched.raw[:300]
    assert fetched.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert fetched.headers["Cache-Control"] == "private, no-cache"
    calendar = icalendar.Calendar.from_ical(fetched.raw)
    assert (str(calendar["VERSION"]), str(calendar["PRODID"]), str(calendar["X-WR-CALNAME"])) == (
        "2.0", "-//pet-api//reminders//EN", "Pet care")
    assert calendar["REFRESH-INTERVAL"].dt == dt.timedelta(hours=1)
    by_uid = events(fetched.raw)
    items = {f"record-{r['id']}@pet-api": r for r in (overdue, shared, far)}
    assert set(by_uid) == set(items)
    for uid, event in by_uid.items():
        record = items[uid]
        due = dt.date.fromisoformat(record["due_date"])
        assert (event["DTSTART"].dt, event["DTEND"].dt) == (due, due + dt.timedelta(days=1))
        assert not isinstance(event["DTSTART"].dt, dt.datetime)  # all day
        assert int(event["SEQUENCE"]) == record["version"] - 1
        alarms = event.walk("VALARM")
        assert [(str(a["ACTION"]), a["TRIGGER"].dt) for a in alarms] == [("DISPLAY", -dt.timedelta(days=1))]
    assert str(by_uid[f"record-{overdue['id']}@pet-api"]["SUMMARY"]) == "Rex: vaccination (rabies booster)"
    assert str(by_uid[f"record-{shared['id']}@pet-api"]["SUMMARY"]) == "Mia, the cat: vet visit"

    other = parse_with_ical_js(ical_js, fetched.raw)
    assert (other["version"], other["prodid"], other["name"]) == ("2.0", "-//pet-api//reminders//EN", "Pet care")
    assert sorted((e["uid"], e["summary"], e["start"], e["end"], e["allDay"], e["alarms"]) for e in other["events"]) \
        == sorted((uid, str(e["SUMMARY"]), e["DTSTART"].dt.isoformat(), e["DTEND"].dt.isoformat(), True,
                   [["DISPLAY", "-P1D"]]) for uid, e in by_uid.items())

    again = await api.get(url)  # nothing changed: the same bytes, the same tag
    assert (again.raw, again.headers["ETag"]) == (fetched.raw, fetched.headers["ETag"])
    unchanged = await api.get(url, headers={"If-None-Match": fetched.headers["ETag"]})
    assert (unchanged.status, unchanged.raw) == (304, b"")

    done = await api.patch(f"/v1/pets/{rex['id']}/records/{overdue['id']}", token=token,
                           json={"completed_at": "2025-01-01T09:00:00Z"})
    assert done.status == 200
    moved = await api.patch(f"/v1/pets/{mia['id']}/records/{shared['id']}", token=bob_token,
                            json={"due_date": day(4)})
    assert moved.status == 200
    after = await api.get(url, headers={"If-None-Match": fetched.headers["ETag"]})
    assert after.status == 200 and after.headers["ETag"] != fetched.headers["ETag"]
    now = events(after.raw)
    assert set(now) == {f"record-{shared['id']}@pet-api", f"record-{far['id']}@pet-api"}  # same UIDs as before
    moved_event = now[f"record-{shared['id']}@pet-api"]
    assert (moved_event["DTSTART"].dt.isoformat(), int(moved_event["SEQUENCE"])) == (day(4), 1)
    assert len(parse_with_ical_js(ical_js, after.raw)["events"]) == 2


@pytest.mark.gen_test(timeout=120)
async def test_a_feed_with_nothing_due_still_holds_a_component(api, app, ical_js):
    """RFC 5545 3.4 and 3.6: icalbody = calprops component, component = 1*(...): a calendar holds at least one
    component. With nothing due there is no event, so the feed always carries a VTIMEZONE for UTC."""
    _, token = await user_with_token(app)
    url, _ = await new_feed(api, token)
    fetched = await api.get(url)
    assert fetched.status == 200
    calendar = icalendar.Calendar.from_ical(fetched.raw)
    assert [c.name for c in calendar.subcomponents] == ["VTIMEZONE"]
    lines = fetched.raw.split(b"\r\n")
    assert lines[lines.index(b"BEGIN:VTIMEZONE"):lines.index(b"END:VTIMEZONE") + 1] == [
        b"BEGIN:VTIMEZONE", b"TZID:UTC", b"BEGIN:STANDARD", b"DTSTART:19700101T000000", b"TZNAME:UTC",
        b"TZOFFSETFROM:+0000", b"TZOFFSETTO:+0000", b"END:STANDARD", b"END:VTIMEZONE"]
    other = parse_with_ical_js(ical_js, fetched.raw)
    assert (other["components"], other["timezones"], other["events"]) == (["vtimezone"], [["UTC", 0]], [])
    rex = await create_pet(api, token, name="Rex")
    await due_item(api, token, rex["id"], 3)
    with_event = parse_with_ical_js(ical_js, (await api.get(url)).raw)
    assert with_event["components"] == ["vtimezone", "vevent"]


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_the_feed_shows_a_value_with_every_digit_the_api_gives_and_no_exponent(api, app):
    """The README: values keep every digit. The feed wrote them with %g: 12.3457, 1.23457e+06, 1e+12."""
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    url, _ = await new_feed(api, token)
    shown = {}
    for value, text in [(12.3456789, "12.3456789"), (1234567, "1234567"), (1e12, "1000000000000"),
                        (-2.5, "-2.5"), (1e-7, "0.0000001"), (0.1, "0.1"), (12.0, "12"),
                        (1.0000000000000002, "1.0000000000000002")]:
        created = await api.post(f"/v1/pets/{pet['id']}/records", token=token, json={
            "kind": "weight", "date": "2024-01-01", "due_date": day(5), "value": value})
        assert created.status == 201 and created.body["data"]["value"] == value
        shown[f"record-{created.body['data']['id']}@pet-api"] = f"Recorded 2024-01-01\nValue: {text}"
    described = {uid: str(e["DESCRIPTION"]) for uid, e in events((await api.get(url)).raw).items()}
    assert described == shown


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_renaming_the_pet_revises_its_events_stamps_and_sequence(api, app):
    """RFC 5545 3.8.7.2-3: DTSTAMP and LAST-MODIFIED say when the event's information was last revised; a rename
    changes its SUMMARY and alarm text, so a client that skips unchanged events must see a newer stamp and SEQUENCE."""
    _, token = await user_with_token(app)
    rex = await create_pet(api, token, name="Rex")
    item = await due_item(api, token, rex["id"], 20)
    url, uid, hour_ago = await hour_old_event(api, app, token, pet_id=rex["id"], record_id=item["id"])
    before = events((await api.get(url)).raw)[uid]
    assert (str(before["SUMMARY"]), int(before["SEQUENCE"])) == ("Rex: vaccination", 0)
    assert before["LAST-MODIFIED"].dt == before["DTSTAMP"].dt == hour_ago
    renamed = await api.patch(f"/v1/pets/{rex['id']}", token=token, json={"name": "Max"}, headers={"If-Match": "*"})
    assert renamed.status == 200, renamed.body
    after = events((await api.get(url)).raw)[uid]
    stamp = dt.datetime.fromisoformat(renamed.body["data"]["updated_at"]).replace(microsecond=0)
    assert (str(after["SUMMARY"]), int(after["SEQUENCE"])) == ("Max: vaccination", 1)
    assert after["LAST-MODIFIED"].dt == after["DTSTAMP"].dt == stamp > before["DTSTAMP"].dt
    assert str(after.walk("VALARM")[0]["DESCRIPTION"]) == "Max: vaccination"
    edited = await api.patch(f"/v1/pets/{rex['id']}/records/{item['id']}", token=token, json={"note": "booster"})
    assert edited.status == 200
    last = events((await api.get(url)).raw)[uid]  # the record's version counts too: the sequence keeps growing
    assert int(last["SEQUENCE"]) == 2
    assert last["LAST-MODIFIED"].dt == dt.datetime.fromisoformat(edited.body["data"]["updated_at"]).replace(
        microsecond=0)


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_new_event_starts_at_sequence_0_whatever_its_pet_went_through_before(api, app):
    """RFC 5545 3.8.7.4: "When a calendar component is created, its sequence number is 0". A record made after its
    pet was renamed three times is a new event, not the fourth revision of one no client ever received; a rename
    after it revises it."""
    _, token = await user_with_token(app)
    rex = await create_pet(api, token, name="Rex")
    for version, name in enumerate(("Max", "Bella", "Rex"), start=2):
        renamed = await api.patch(f"/v1/pets/{rex['id']}", token=token, json={"name": name},
                                  headers={"If-Match": "*"})
        assert (renamed.status, renamed.body["data"]["version"]) == (200, version)
    item = await due_item(api, token, rex["id"], 20)
    assert item["version"] == 1
    url, uid, hour_ago = await hour_old_event(api, app, token, pet_id=rex["id"], record_id=item["id"])
    first = events((await api.get(url)).raw)[uid]
    assert (str(first["SUMMARY"]), int(first["SEQUENCE"])) == ("Rex: vaccination", 0)
    assert first["LAST-MODIFIED"].dt == first["DTSTAMP"].dt == hour_ago
    renamed = await api.patch(f"/v1/pets/{rex['id']}", token=token, json={"name": "Bo"}, headers={"If-Match": "*"})
    assert renamed.status == 200, renamed.body
    after = events((await api.get(url)).raw)[uid]
    stamp = dt.datetime.fromisoformat(renamed.body["data"]["updated_at"]).replace(microsecond=0)
    assert (str(after["SUMMARY"]), int(after["SEQUENCE"])) == ("Bo: vaccination", 1)
    assert after["LAST-MODIFIED"].dt == after["DTSTAMP"].dt == stamp > first["DTSTAMP"].dt


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_rotating_and_revoking_the_feed(api, app):
    user, token = await user_with_token(app)
    assert_error(await api.delete("/v1/users/me/calendar", token=token), 404, 1002, "DELETE /v1/users/me/calendar")
    first, _ = await new_feed(api, token)
    second, _ = await new_feed(api, token)  # rotates: the first URL stops working
    assert first != second
    assert_error(await api.get(first), 404, 1002, f"GET {FEED_ROUTE}")
    assert (await api.get(second)).status == 200
    rows = await app.db.fetch_all("SELECT user_id FROM calendar_feeds WHERE user_id = %s", (user.id,))
    assert len(rows) == 1
    revoked = await api.delete("/v1/users/me/calendar", token=token)
    assert revoked.body == {"code": 200, "data": None, "message": "ok"}
    assert_error(await api.get(second), 404, 1002, f"GET {FEED_ROUTE}")
    assert_error(await api.delete("/v1/users/me/calendar", token=token), 404, 1002, "DELETE /v1/users/me/calendar")
    assert_error(await api.get("/v1/calendar/" + "A" * 43 + ".ics"), 404, 1002, f"GET {FEED_ROUTE}")
    assert_error(await api.post("/v1/users/me/calendar"), 401, 1003, "POST /v1/users/me/calendar")
    pets_only = token_for(app, user.id, ["pets:read", "pets:write"])
    assert_error(await api.post("/v1/users/me/calendar", token=pets_only), 403, 1004, "POST /v1/users/me/calendar")


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_password_change_or_disabling_the_account_revokes_the_feed(api, app):
    user = await create_user(app, email="feed-owner@example.com")
    token = await api.token("feed-owner@example.com")
    url, _ = await new_feed(api, token)
    renamed = await api.patch("/v1/users/me", token=token, json={"nickname": "Still me"})
    assert renamed.status == 200 and (await api.get(url)).status == 200  # not a credential
    changed = await api.patch("/v1/users/me", token=token,
                              json={"password": "another-long-password", "current_password": PASSWORD})
    assert changed.status == 200, changed.body
    assert_error(await api.get(url), 404, 1002, f"GET {FEED_ROUTE}")
    assert (await app.db.fetch_all("SELECT user_id FROM calendar_feeds WHERE user_id = %s", (user.id,))) == []

    token = await api.token("feed-owner@example.com", "another-long-password")
    url, _ = await new_feed(api, token)
    _, admin = await user_with_token(app, role="admin")
    disabled = await api.patch(f"/v1/users/{user.id}", token=admin, json={"disabled": True})
    assert disabled.status == 200, disabled.body
    assert_error(await api.get(url), 404, 1002, f"GET {FEED_ROUTE}")
    enabled = await api.patch(f"/v1/users/{user.id}", token=admin, json={"disabled": False})
    assert enabled.status == 200
    assert_error(await api.get(url), 404, 1002, f"GET {FEED_ROUTE}")  # revoked, not only hidden


@both_backends
@pytest.mark.gen_test(timeout=30)
async def test_a_role_change_or_a_disabled_flag_left_false_keeps_the_feed(api, app):
    # The listener reacted to the name "disabled" in the change, whatever its value: an administrator's form sending
    # "disabled": false with a promotion (or alone) deleted the feed of an account nobody disabled.
    user = await create_user(app, email="kept-feed@example.com")
    url, _ = await new_feed(api, await api.token("kept-feed@example.com"))
    _, admin = await user_with_token(app, role="admin")
    for body, role in (({"disabled": False}, "user"), ({"role": "user", "disabled": False}, "user"),
                       ({"role": "admin", "disabled": False}, "admin"), ({"role": "user"}, "user")):
        changed = await api.patch(f"/v1/users/{user.id}", token=admin, json=body)
        assert (changed.status, changed.body["data"]["role"], changed.body["data"]["disabled"]) == (200, role, False)
        fetched = await api.get(url)
        assert (fetched.status, fetched.headers["Content-Type"].split(";")[0]) == (200, "text/calendar"), body
    disabled = await api.patch(f"/v1/users/{user.id}", token=admin, json={"role": "user", "disabled": True})
    assert disabled.status == 200, disabled.body
    assert_error(await api.get(url), 404, 1002, f"GET {FEED_ROUTE}")


@pytest.mark.gen_test(timeout=30)
async def test_the_feed_token_is_in_no_log_line(api, app, caplog):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    await due_item(api, token, pet["id"], 3)
    caplog.set_level(logging.DEBUG)
    url, feed_token = await new_feed(api, token)
    ok = await api.get(url)
    assert ok.status == 200
    assert (await api.get(url, headers={"If-None-Match": ok.headers["ETag"]})).status == 304
    assert (await api.request("OPTIONS", url)).status == 204
    head = await api.request("HEAD", url)
    assert (head.status, head.raw, head.headers["ETag"]) == (200, b"", ok.headers["ETag"])
    assert (await api.delete("/v1/users/me/calendar", token=token)).status == 200
    gone = await api.get(url)
    assert_error(gone, 404, 1002, f"GET {FEED_ROUTE}")
    assert feed_token.encode() not in gone.raw

    access = [r for r in caplog.records if r.name == "pet_api.access"]
    assert [(r.method, r.path, r.status) for r in access if r.path == FEED_ROUTE] == [  # type: ignore[attr-defined]
        ("GET", FEED_ROUTE, 200), ("GET", FEED_ROUTE, 304), ("OPTIONS", FEED_ROUTE, 204), ("HEAD", FEED_ROUTE, 200),
        ("GET", FEED_ROUTE, 404)]
    for record in caplog.records:
        assert feed_token not in record.getMessage()
        assert feed_token not in repr(record.__dict__), record.__dict__


@pytest.mark.gen_test(timeout=30)
async def test_a_feed_url_slightly_changed_matches_no_route_and_still_hides_its_token(api, app, caplog):
    """The 404 body's request and the access log name the feed's template: the token stays a password even when a
    client adds a slash or changes the extension's case."""
    _, token = await user_with_token(app)
    url, feed_token = await new_feed(api, token)
    escaped = "".join(f"%{ord(c):02X}" for c in feed_token)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    for path in (f"{url}/", url.removesuffix(".ics"), url.removesuffix(".ics") + ".ICS", url.upper(),
                 f"/v1//calendar/{feed_token}.ics", f"/v1/./calendar/{feed_token}",
                 f"/v1/calendar/{feed_token}/x.ics"):
        response = await api.get(path)
        assert_error(response, 404, 1007, f"GET {FEED_ROUTE}", "no such route")
        assert feed_token.encode() not in response.raw
    # Percent-encoded unreserved characters are those characters (RFC 3986 6.2.2.2): the same feed, logged alike.
    same = await api.get(f"/v1/calendar/{escaped}.ics")
    assert (same.status, same.raw) == (200, (await api.get(url)).raw)
    other = await api.get("/v1/calendars/x")  # elsewhere an unknown path is shown as it is
    assert_error(other, 404, 1007, "GET /v1/calendars/x", "no such route")
    access = [(r.path, r.status) for r in caplog.records if r.name == "pet_api.access"]  # type: ignore[attr-defined]
    assert access == [(FEED_ROUTE, 404)] * 7 + [(FEED_ROUTE, 200)] * 2 + [("/v1/calendars/x", 404)]
    for record in caplog.records:
        assert feed_token not in repr(record.__dict__), record.__dict__
        assert feed_token.upper() not in repr(record.__dict__).upper(), record.__dict__
        assert escaped not in repr(record.__dict__), record.__dict__


@pytest.mark.gen_test(timeout=30)
async def test_a_feed_url_refused_before_routing_hides_its_token(app, caplog):
    """A header block over max_header_size is answered by the connection, before any route is matched."""
    async with serving(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        feed_token = "Ab-_09" * 7 + "z"
        caplog.set_level(logging.DEBUG)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /v1/calendar/{feed_token}.ics/ HTTP/1.1\r\nHost: x\r\nX-Big: ".encode()
                     + b"a" * app.config.max_header_size + b"\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert orjson.loads(body) == {"error_code": 1007, "message": "request header fields too large",
                                  "request": f"GET {FEED_ROUTE}"}
    assert [r.path for r in caplog.records if r.name == "pet_api.access"] == [FEED_ROUTE]  # type: ignore[attr-defined]
    for record in caplog.records:
        assert feed_token not in repr(record.__dict__), record.__dict__


def test_both_refresh_hints_are_rfc_5545_durations():
    """X-PUBLISHED-TTL is not a property icalendar knows: given a bare timedelta it wrote its str(), "1:00:00"."""
    lines = feed([]).split(b"\r\n")
    assert [line for line in lines if b"REFRESH-INTERVAL" in line or b"PUBLISHED-TTL" in line] == [
        b"REFRESH-INTERVAL;VALUE=DURATION:PT1H", b"X-PUBLISHED-TTL:PT1H"]
