"""GET /v1/events: server-sent events resumable with Last-Event-ID, heartbeats, the end on revocation and drain."""

from __future__ import annotations

import asyncio
import datetime as dt
import resource
import socket
from typing import Any

import orjson
import pytest

from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import purge_changes
from server.plugins.sync.streams import raise_descriptor_limit
from server.services import utcnow
from tests.factories import both_backends, create_pet, user_with_token
from tests.plugins.sync.client import EventStream, share, unshare
from tests.plugins.sync.test_sync import add_record, delete_record, sync, sync_all

HEARTBEAT = 0.3


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"plugin_settings": {"sync": {"events_heartbeat_seconds": HEARTBEAT, "events_poll_seconds": 0.05}}}


async def stream(base_url: str, token: str, **kw: Any) -> EventStream:
    opened = await EventStream.open(base_url, token=token, **kw)
    assert opened.status == 200
    assert opened.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert opened.headers["cache-control"] == "no-cache"
    assert opened.headers["x-accel-buffering"] == "no"
    assert await opened.next() == {"retry": "1000"}
    return opened


def summary(event: dict[str, Any]) -> tuple[str, str, int, str]:
    assert event["event"] == "change" and event["id"]
    data = event["data"]["data"]
    return event["data"]["type"], event["data"]["op"], event["data"]["id"], data and data.get("name")


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_stream_sends_what_follows_its_cursor_then_live_changes_and_resumes_with_last_event_id(
        app, api, http_server, base_url):
    _, token = await user_with_token(app)
    await create_pet(api, token, name="Before")
    _, cursor = await sync_all(api, token)
    missed = await create_pet(api, token, name="Missed")
    events = await stream(base_url, token, headers={}, path=f"/v1/events?cursor={cursor}")
    first = await events.next_change()
    assert summary(first) == ("pet", "upsert", missed["id"], "Missed")
    assert first["data"] == (await sync(api, token, cursor))["changes"][0]  # the same JSON as a sync change
    live = await create_pet(api, token, name="Live")
    second = await events.next_change()
    assert summary(second) == ("pet", "upsert", live["id"], "Live")
    events.close()

    assert (await api.delete(f"/v1/pets/{missed['id']}", token=token)).status == 200
    offline = await create_pet(api, token, name="While away")
    again = await stream(base_url, token, headers={"Last-Event-ID": second["id"]},
                         path=f"/v1/events?cursor={cursor}")  # Last-Event-ID wins over the URL's cursor
    assert [summary(await again.next_change()) for _ in range(2)] == [
        ("pet", "delete", missed["id"], None), ("pet", "upsert", offline["id"], "While away")]
    assert await again.next(wait=5) == {"comment": ""}  # a heartbeat: nothing repeated
    again.close()


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_stream_without_a_cursor_lists_everything_first_and_heartbeats_when_idle(
        app, api, http_server, base_url):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    events = await stream(base_url, token)
    listed = [await events.next_change(), await events.next_change()]
    assert [(e["data"]["type"], e["data"]["id"], e["data"]["data"]) for e in listed] == [
        ("pet", pet["id"], pet), ("record", record["id"], record)]
    for _ in range(2):
        assert await events.next(wait=5) == {"comment": ""}
    events.close()
    resumed = await stream(base_url, token, headers={"Last-Event-ID": listed[0]["id"]})
    assert summary(await resumed.next_change())[:3] == ("record", "upsert", record["id"])
    resumed.close()


@pytest.mark.gen_test(timeout=60)
async def test_shared_pets_reach_every_members_stream_and_a_removed_member_gets_deletes(
        app, api, http_server, base_url):
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    pet = await create_pet(api, owner_token, name="Shared")
    record = await add_record(api, owner_token, pet["id"])
    owner_events = await stream(base_url, owner_token)
    assert [e["data"]["id"] for e in (await owner_events.next_change(), await owner_events.next_change())] == [
        pet["id"], record["id"]]
    member_events = await stream(base_url, member_token)
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    assert [summary(await member_events.next_change())[:3] for _ in range(2)] == [
        ("pet", "upsert", pet["id"]), ("record", "upsert", record["id"])]
    assert (await api.patch(f"/v1/pets/{pet['id']}", json={"name": "Renamed"}, token=owner_token)).status == 200
    assert summary(await owner_events.next_change()) == ("pet", "upsert", pet["id"], "Renamed")
    assert summary(await member_events.next_change()) == ("pet", "upsert", pet["id"], "Renamed")
    await unshare(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    assert [summary(await member_events.next_change())[:3] for _ in range(2)] == [
        ("pet", "delete", pet["id"]), ("record", "delete", record["id"])]
    owner_events.close()
    member_events.close()


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_members_stream_never_names_a_record_it_could_not_hold(app, api, http_server, base_url):
    """Shared: the pet and its records there (none deleted before); removed while away: deletes for what it held
    (none for records added since); shared again: what is there, nothing of what came and went meanwhile."""
    owner, owner_token = await user_with_token(app)
    member, member_token = await user_with_token(app)
    events = await stream(base_url, member_token)  # an empty account: its listing sends nothing
    pet = await create_pet(api, owner_token, name="Shared")
    for record in [await add_record(api, owner_token, pet["id"], note=f"private {i}") for i in range(2)]:
        await delete_record(api, owner_token, pet["id"], record["id"])
    held = await add_record(api, owner_token, pet["id"], note="held")
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    gained = [await events.next_change() for _ in range(2)]
    assert [summary(e)[:3] for e in gained] == [("pet", "upsert", pet["id"]), ("record", "upsert", held["id"])]
    assert await events.next(wait=2) == {"comment": ""}  # a heartbeat: no delete of the private records
    events.close()

    await unshare(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    await sequence(app.db)  # numbered apart, as when minutes pass: the member's access span closes here
    went = await add_record(api, owner_token, pet["id"], note="went")
    await delete_record(api, owner_token, pet["id"], went["id"])
    came = await add_record(api, owner_token, pet["id"], note="came")
    back = await stream(base_url, member_token, headers={"Last-Event-ID": gained[-1]["id"]})
    assert [summary(await back.next_change())[:3] for _ in range(2)] == [
        ("pet", "delete", pet["id"]), ("record", "delete", held["id"])]
    assert await back.next(wait=2) == {"comment": ""}

    await sequence(app.db)
    await share(app, pet_id=pet["id"], user_id=member.id, owner_id=owner.id)
    assert [summary(await back.next_change())[:3] for _ in range(3)] == [
        ("pet", "upsert", pet["id"]), ("record", "upsert", held["id"]), ("record", "upsert", came["id"])]
    assert await back.next(wait=2) == {"comment": ""}
    back.close()


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_revoked_token_ends_its_stream_with_an_error_event(app, api, http_server, base_url):
    _, token = await user_with_token(app)
    events = await stream(base_url, token)
    assert (await api.delete("/v1/tokens/current", token=token)).status == 200
    assert await events.next_change() == {"event": "error", "data": {
        "error_code": 10033, "message": "token is revoked", "request": "GET /v1/events"}}
    assert await events.next() == {}  # closed


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_errors_before_the_stream_starts_are_the_usual_json(app, api, http_server, base_url):
    _, token = await user_with_token(app)
    await create_pet(api, token)
    _, cursor = await sync_all(api, token)
    for kw, field in (({"path": "/v1/events?cursor=forged"}, "cursor"),
                      ({"headers": {"Last-Event-ID": cursor + "x"}}, "Last-Event-ID")):
        refused = await EventStream.open(base_url, token=token, **kw)
        assert (refused.status, refused.headers["content-type"]) == (400, "application/json; charset=UTF-8")
        assert await refused.body() == {"error_code": 1001, "message": "invalid cursor", "request": "GET /v1/events",
                                        "errors": [{"field": field, "message": "not a cursor of this API"}]}
    anonymous = await EventStream.open(base_url)
    assert anonymous.status == 401
    assert (await anonymous.body())["error_code"] == 1003
    await create_pet(api, token)
    assert await purge_changes(app.db, before=utcnow() + dt.timedelta(seconds=1)) > 0
    expired = await EventStream.open(base_url, token=token, headers={"Last-Event-ID": cursor})
    assert expired.status == 410
    assert await expired.body() == {"error_code": 1012, "message": "sync cursor expired; sync again from the start",
                                    "request": "GET /v1/events"}


@pytest.mark.gen_test(timeout=60)
async def test_head_answers_the_streams_head_and_ends(app, api, http_server, base_url):
    _, token = await user_with_token(app)
    response = await api.request("HEAD", "/v1/events", token=token)
    assert (response.status, response.raw) == (200, b"")
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    # RFC 9110 8.6: no Content-Length unless it is the GET's, and the GET's body has none (it was "0")
    assert "Content-Length" not in response.headers
    assert app.events.streams == set()
    refused = await api.request("HEAD", "/v1/events?cursor=forged", token=token)
    assert (refused.status, refused.raw) == (400, b"")


@pytest.mark.gen_test(timeout=60)
async def test_a_stream_with_an_if_match_is_412_as_it_has_no_tag(app, api, http_server, base_url):
    """RFC 9110 13.1.1: a stream has no ETag, so no list of tags matches it; '*' does (audit http F5)."""
    _, token = await user_with_token(app)
    refused = await EventStream.open(base_url, token=token, headers={"If-Match": '"v1"'})
    assert refused.status == 412
    assert await refused.body() == {"error_code": 1009, "message": "precondition failed", "request": "GET /v1/events"}
    assert app.events.streams == set()
    opened = await stream(base_url, token, headers={"If-Match": "*"})
    opened.close()


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_the_drain_ends_every_stream_at_once_and_refuses_new_ones(app, api, http_server, base_url):
    _, token = await user_with_token(app)
    streams = [await stream(base_url, token) for _ in range(20)]
    app.begin_drain()
    ends = await asyncio.gather(*(s.next_change(wait=2) for s in streams))
    assert ends == [{}] * 20
    late = await EventStream.open(base_url, token=token)
    assert late.status == 503
    assert (await late.body())["error_code"] == 1008


@pytest.mark.gen_test(timeout=60)
async def test_a_stream_ends_with_an_error_event_when_its_token_expires(app, api, http_server, base_url):
    user, _ = await user_with_token(app)
    short = app.tokens.issue(user.id, ["pets:read"])
    events = await stream(base_url, short.token)
    app.tokens.token_expiration = 1  # tokens issued from now on live 1 s
    expiring = app.tokens.issue(user.id, ["pets:read"])
    short_events = await stream(base_url, expiring.token)
    assert await short_events.next_change(wait=10) == {"event": "error", "data": {
        "error_code": 10032, "message": "token is expired", "request": "GET /v1/events"}}
    assert await short_events.next() == {}
    assert await events.next(wait=1) == {"comment": ""}  # the other token's stream goes on
    events.close()


class ChunkedStream:
    """A raw HTTP/1.1 client of GET /v1/events: the body arrives as chunks (tornado frames a body of unknown length
    so for HTTP/1.1); `text` is the body so far, unframed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        self.reader, self.writer, self.head, self.text = reader, writer, head, b""

    @classmethod
    async def open(cls, base_url: str, token: str) -> ChunkedStream:
        host, _, port = base_url.removeprefix("http://").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /v1/events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                     f"Authorization: Bearer {token}\r\n\r\n".encode())
        return cls(reader, writer, await reader.readuntil(b"\r\n\r\n"))

    async def until(self, wanted: bytes) -> None:
        """Read chunks until the body holds `wanted` (fails if the body ends first)."""
        while wanted not in self.text:
            assert await self.next_chunk() != b"", self.text

    async def next_chunk(self) -> bytes:
        size = int((await asyncio.wait_for(self.reader.readuntil(b"\r\n"), 10)).strip(), 16)
        data = await self.reader.readexactly(size + 2)
        assert data.endswith(b"\r\n")
        self.text += data[:-2]
        return data[:-2]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_an_http11_stream_is_chunked_and_ends_with_the_last_chunk(app, api, http_server, base_url):
    _, token = await user_with_token(app)
    events = await ChunkedStream.open(base_url, token)
    assert events.head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nTransfer-Encoding: chunked\r\n" in events.head
    assert await events.next_chunk() == b"retry: 1000\n\n"
    pet = await create_pet(api, token, name="Chunked")
    await events.until(b'"name":"Chunked"')
    assert await events.next_chunk() == b":\n\n"  # a heartbeat, then nothing more until the end
    assert (await api.delete("/v1/tokens/current", token=token)).status == 200
    await events.until(b"event: error\n")
    assert await events.next_chunk() == b""  # the last chunk
    assert await events.reader.read() == b""  # and the connection closes
    blocks = [b for b in events.text.split(b"\n\n") if b]
    assert blocks[0] == b"retry: 1000"
    change = [b for b in blocks if b.startswith(b"id: ")]
    assert len(change) == 1 and b'"id":%d' % pet["id"] in change[0]
    assert blocks[-1] == b'event: error\ndata: {"error_code":10033,"message":"token is revoked",' \
                         b'"request":"GET /v1/events"}'
    events.writer.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_reads_slowly_gets_every_change_once_in_order(app, api, http_server, base_url):
    _, token = await user_with_token(app)
    pet = await create_pet(api, token)
    loop = asyncio.get_running_loop()
    host, _, port = base_url.removeprefix("http://").partition(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    client.setblocking(False)
    await loop.sock_connect(client, (host, int(port)))
    await loop.sock_sendall(client, f"GET /v1/events HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    body = b""
    while b'"type":"pet"' not in body:
        body += await asyncio.wait_for(loop.sock_recv(client, 65536), 10)
    [stream] = app.events.streams
    stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the server's side small too
    note = "n" * 2000
    records = [(await add_record(api, token, pet["id"], note=note))["id"] for _ in range(40)]  # ~90 KB of events
    for _ in range(100):  # the client reads nothing meanwhile: what the socket cannot take waits in the hub
        if stream.backlog:
            break
        await asyncio.sleep(0.05)
    assert stream.backlog
    while body.count(b'"type":"record"') < len(records) or not body.endswith(b"\n\n"):
        body += await asyncio.wait_for(loop.sock_recv(client, 65536), 10)
    client.close()
    sent = [orjson.loads(block.partition(b"data: ")[2]) for block in body.split(b"\n\n") if b"event: change" in block]
    assert [(c["type"], c["id"]) for c in sent] == [("pet", pet["id"])] + [("record", r) for r in records]
    assert all(c["data"]["note"] == note for c in sent[1:])


def test_a_worker_raises_its_open_files_limit_to_the_hard_one():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 2:
        pytest.skip("no finite hard limit to raise to")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard - 1, hard))  # a distribution's default is lower still
    try:
        assert raise_descriptor_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_the_streams_of_a_user_at_one_position_share_one_read_per_change(
        app, api, http_server, base_url, monkeypatch):
    user, token = await user_with_token(app)
    _, other_token = await user_with_token(app)
    streams = [await stream(base_url, token) for _ in range(10)]
    other = await stream(base_url, other_token)
    reads: list[int] = []
    page = app.events.renderer.page

    async def counted(reader: Any, position: Any) -> Any:
        reads.append(reader.user_id)
        return await page(reader, position)

    monkeypatch.setattr(app.events.renderer, "page", counted)
    pet = await create_pet(api, token, name="Once")
    received = [await s.next_change() for s in streams]
    assert summary(received[0]) == ("pet", "upsert", pet["id"], "Once")
    assert all(event == received[0] for event in received)
    assert reads == [user.id]  # one page for the ten streams; none for the other user's
    assert await other.next(wait=5) == {"comment": ""}  # a heartbeat: nothing for the other user
    for s in [*streams, other]:
        s.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_leaves_frees_its_stream_at_once(app, api, http_server, base_url):
    user, token = await user_with_token(app)
    _, other_token = await user_with_token(app)
    staying = await stream(base_url, token)
    leaving = await stream(base_url, other_token)
    assert len(app.events.streams) == 2
    leaving.close()
    for _ in range(25):  # within 0.25 s: before two heartbeats (0.3 s apart) could find it gone by writing
        if len(app.events.streams) == 1:
            break
        await asyncio.sleep(0.01)
    assert len(app.events.streams) == 1
    [kept] = app.events.streams
    assert kept.sock.fileno() >= 0
    assert app.events.users.keys() == {user.id}  # the leaving user's interest went with their last stream
    await create_pet(api, token, name="Still here")
    assert summary(await staying.next_change())[3] == "Still here"
    staying.close()
