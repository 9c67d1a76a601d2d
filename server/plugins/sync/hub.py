"""The event streams' fan-out: one poller per worker reads what the change log gained since its last round (one
query however many streams are open), reads and renders one page per (user, position) among the streams it
concerns, and writes those same bytes to each of them itself. After its first page a stream is no request handler
and no coroutine, not even tornado's IOStream: a small record of its socket (taken from tornado once the handler
has written the head and first page), user and position, which the hub watches and writes itself.
One timer beats for every stream; token expiry and revocation and the drain end them from here too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream

from server import periodic
from server.auth import Principal
from server.errors import APIError, ServiceUnavailable, TokenExpired
from server.plugins.sync.cursor import Position
from server.plugins.sync.services import log_head, new_entries, visible_pet_ids

if TYPE_CHECKING:
    from server.db import Database
    from server.services.revocations import RevocationCache

log = logging.getLogger("pet_api.sync")
T = TypeVar("T")
POLL_BATCH = 10_000  # log entries read per round at most; a longer backlog takes further rounds
READS_AT_ONCE = 8  # page reads in flight per round: the pool stays open to the other requests
PAGES_PER_ROUND = 20  # a stream catching up gets at most this many pages a round (then the next round goes on)
WRITE_BUFFER_LIMIT = 1 << 20  # bytes a client may leave unread (a stream waits for it to read before its next page)
BEAT = b":\n\n"
LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """`data` as one HTTP/1.1 chunk (a stream to an HTTP/1.1 client is chunked; an HTTP/1.0 one is the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A page as event-stream bytes: read and rendered once for all the streams of a user at one position."""

    position: Position
    has_more: bool
    events: bytes


class Renderer(Protocol):
    """What the hub needs of the application: a user's page after a position, an error event."""

    async def page(self, user: Principal, position: Position | None) -> Rendered: ...

    def error(self, error: APIError, language: str, request: str) -> bytes: ...


class Stream:
    """One open event stream: its socket, whose token, where it stands."""

    __slots__ = ("backlog", "chunked", "language", "pending", "position", "request", "sock", "user")

    def __init__(self, sock: socket.socket, user: Principal, position: Position, *, chunked: bool, language: str,
                 request: str) -> None:
        self.sock = sock
        self.user = user
        self.position = position
        self.chunked = chunked
        self.language = language  # of the error event
        self.request = request  # "GET /v1/events", for the error event
        self.pending = False  # the log may hold something for it: read a page
        self.backlog = b""  # written, not yet taken by the socket (the client reads slowly)


class Interest:
    """A user with streams here (or opening): the pets whose changes wake them."""

    __slots__ = ("opening", "pets", "streams")

    def __init__(self) -> None:
        self.pets: set[int] = set()
        self.streams: set[Stream] = set()
        self.opening = 0  # streams between subscribe() and open()


class EventHub:
    """The streams of one worker and the poller that feeds them."""

    def __init__(self, *, poll_seconds: float, heartbeat_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.streams: set[Stream] = set()
        self.users: dict[int, Interest] = {}
        self.by_pet: dict[int, set[int]] = {}  # pet -> the users here it concerns
        self.head = 0
        self.closing = False
        self.rounds = 0  # poll queries made (the test of "one query per interval" reads it)
        self.renderer: Renderer | None = None  # set by the events handler (it knows the application)
        self._reads: dict[tuple[object, ...], asyncio.Future[Any]] = {}  # key -> the read in progress
        self._reading = asyncio.Semaphore(READS_AT_ONCE)
        self._round_started = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, db: Database, revocations: RevocationCache) -> None:
        """Start the rounds (they query nothing while no stream is open: an idle worker's pool stays idle)."""
        raise_descriptor_limit()
        self._tasks = [
            periodic.start_every(self._until_next_round, lambda: self.poll(db, revocations),
                                 lambda exc: log.exception("event poll failed")),
            periodic.start_every(lambda: self.heartbeat_seconds, self._heartbeat,
                                 lambda exc: log.exception("heartbeat failed")),
        ]

    def _until_next_round(self) -> float:
        """Rounds start every poll_seconds: a long round (many streams to write) delays the next one less."""
        return max(0.0, self._round_started + self.poll_seconds - time.monotonic())

    async def stop(self) -> None:
        self.close_all()
        for task in self._tasks:
            await periodic.stop(task)
        self._tasks = []

    def close_all(self) -> None:
        """The drain: every stream ends now (clients reconnect elsewhere with their last id); no new one opens."""
        self.closing = True
        for stream in list(self.streams):
            self.end(stream)

    # ---- streams
    async def subscribe(self, db: Database, user_id: int) -> int:
        """Before a stream's first read: its user's changes are followed from now on (so none falls between that
        read and open()). The hub's head then, to give open(); unsubscribe() if the stream does not open."""
        if not self.users:  # idle: the poller resumes from the log's head
            head = await log_head(db)
            self.head = head if not self.users else min(self.head, head)
        interest = self.users.get(user_id)
        if interest is None:
            interest = self.users[user_id] = Interest()
        interest.opening += 1
        head = self.head
        try:  # a pet gained meanwhile is added by the poller: the set only grows while the user has streams
            for pet_id in await self.shared(("pets", user_id, head), lambda: visible_pet_ids(db, user_id=user_id)):
                self._gained(user_id, interest, pet_id)
        except BaseException:
            self.unsubscribe(user_id)
            raise
        return head

    def unsubscribe(self, user_id: int) -> None:
        """A stream that subscribed and will not open (an error before it started, HEAD, a client gone)."""
        interest = self.users.get(user_id)
        if interest is not None:
            interest.opening -= 1
            self._forget(user_id, interest)

    def open(self, conn: IOStream, user: Principal, page: Rendered, head: int, *, chunked: bool, language: str,
             request: str) -> Stream:
        """Take over a stream whose first page is written; `head`: what subscribe() answered (a round since then
        may have passed it by: it reads again)."""
        stream = Stream(take_socket(conn), user, page.position, chunked=chunked, language=language,
                        request=request)
        stream.pending = page.has_more or self.head != head
        interest = self.users[user.user_id]
        interest.opening -= 1
        interest.streams.add(stream)
        self.streams.add(stream)
        asyncio.get_running_loop().add_reader(stream.sock.fileno(), self._readable, stream)
        return stream

    def close(self, stream: Stream) -> None:
        """Forget a stream and close its connection (its client left, or it ended)."""
        if stream not in self.streams:
            return
        self.streams.discard(stream)
        user_id = stream.user.user_id
        interest = self.users[user_id]
        interest.streams.discard(stream)
        self._forget(user_id, interest)
        loop = asyncio.get_running_loop()
        loop.remove_reader(stream.sock.fileno())
        if stream.backlog:
            loop.remove_writer(stream.sock.fileno())
        stream.sock.close()

    def end(self, stream: Stream, error: APIError | None = None) -> None:
        """End a stream: the error event if any, the HTTP end of the body, then the connection closes."""
        tail = b"" if error is None or self.renderer is None else \
            self.renderer.error(error, stream.language, stream.request)
        if stream.chunked:
            tail = (chunk(tail) if tail else b"") + LAST_CHUNK
        if tail and not stream.backlog:  # a client this far behind misses the end: it reconnects all the same
            with contextlib.suppress(OSError):
                stream.sock.send(tail)
        self.close(stream)

    def _gained(self, user_id: int, interest: Interest, pet_id: int) -> None:
        """A pet the user can see (or was given: created, shared): its changes wake the user's streams. A pet they
        lose stays until their last stream here closes: a needless wake-up at worst, never a missed one."""
        if pet_id not in interest.pets:
            interest.pets.add(pet_id)
            self.by_pet.setdefault(pet_id, set()).add(user_id)

    def _forget(self, user_id: int, interest: Interest) -> None:
        if interest.streams or interest.opening > 0:
            return
        del self.users[user_id]
        for pet_id in interest.pets:
            users = self.by_pet.get(pet_id)
            if users is not None:
                users.discard(user_id)
                if not users:
                    del self.by_pet[pet_id]

    async def shared(self, key: tuple[object, ...], fetch: Callable[[], Awaitable[T]]) -> T:
        """fetch() once for every stream asking for the same key meanwhile: a user's streams opening at once
        (after a drain elsewhere they come back together, mostly from the same last event) share a read."""
        shared = self._reads.get(key)
        if shared is None:
            shared = self._reads[key] = asyncio.ensure_future(fetch())
            shared.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(shared)

    # ---- the rounds
    async def poll(self, db: Database, revocations: RevocationCache) -> None:
        """One query for what the log gained; mark the streams it concerns; end those whose token is no longer
        good (expired, revoked: within the revocation cache's refresh bound); then deliver."""
        self._round_started = time.monotonic()
        if not self.users:
            return
        self.rounds += 1
        entries = await new_entries(db, after=self.head, limit=POLL_BATCH)
        for _seq, pet_id, member in entries:
            if pet_id is None:
                continue
            gainer = self.users.get(member) if member is not None else None
            if gainer is not None and member is not None:
                self._gained(member, gainer, pet_id)
                self._wake(gainer)
            for user_id in self.by_pet.get(pet_id, ()):
                self._wake(self.users[user_id])
        if entries:
            self.head = max(self.head, entries[-1][0])
        now = time.time()
        for stream in list(self.streams):
            try:
                if now >= stream.user.expires_at:
                    raise TokenExpired()
                revocations.check(stream.user)
            except APIError as exc:
                self.end(stream, exc)
        await self.deliver()

    @staticmethod
    def _wake(interest: Interest) -> None:
        for stream in interest.streams:
            stream.pending = True

    async def deliver(self) -> None:
        """Read one page per (user, position) among the woken streams and write it to each; again while pages
        have more (a stream whose client has not taken the last write waits: the socket is its back-pressure)."""
        for _ in range(PAGES_PER_ROUND):
            groups: dict[tuple[int, Position], list[Stream]] = {}
            for stream in self.streams:
                if stream.pending and not stream.backlog:
                    groups.setdefault((stream.user.user_id, stream.position), []).append(stream)
            if not groups:
                return
            started = time.perf_counter()
            more = await asyncio.gather(*(self._deliver(streams) for streams in groups.values()))
            log.debug("event pages delivered", extra={"groups": len(groups), "ms": round(
                (time.perf_counter() - started) * 1000, 1), "streams": sum(len(g) for g in groups.values())})
            if not any(more):
                return

    async def _deliver(self, streams: list[Stream]) -> bool:
        """One page to streams of one user at one position; whether there is more to read."""
        assert self.renderer is not None  # set by the handler that opened them
        first = streams[0]
        async with self._reading:
            try:
                page = await self.renderer.page(first.user, first.position)
            except ServiceUnavailable:  # the pool is busy or the database away: they stay pending for next round
                return False
            except APIError as exc:  # e.g. 410: the log was purged past these streams while they lagged
                for stream in streams:
                    self.end(stream, exc)
                return False
        framed = chunk(page.events) if page.events and any(s.chunked for s in streams) else b""
        for stream in streams:
            if stream in self.streams:
                stream.position, stream.pending = page.position, page.has_more
                if page.events:
                    self._write(stream, framed if stream.chunked else page.events)
        return page.has_more

    def _write(self, stream: Stream, data: bytes) -> None:
        """Send what the socket takes now; keep the rest and send it when the socket can take more."""
        if stream.backlog:
            if len(stream.backlog) + len(data) > WRITE_BUFFER_LIMIT:  # it reads nothing: cut (it resumes later)
                self.close(stream)
            else:
                stream.backlog += data
            return
        try:
            sent = stream.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the client is gone
            self.close(stream)
            return
        if sent < len(data):
            stream.backlog = data[sent:]
            asyncio.get_running_loop().add_writer(stream.sock.fileno(), self._writable, stream)

    def _writable(self, stream: Stream) -> None:
        try:
            sent = stream.sock.send(stream.backlog)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(stream)
            return
        stream.backlog = stream.backlog[sent:]
        if not stream.backlog:
            asyncio.get_running_loop().remove_writer(stream.sock.fileno())

    def _readable(self, stream: Stream) -> None:
        """A stream's client sends nothing more after its request: the end of its input is its leaving."""
        try:
            data = stream.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close(stream)

    async def _heartbeat(self) -> None:
        framed = chunk(BEAT)
        for stream in list(self.streams):
            self._write(stream, framed if stream.chunked else BEAT)


def take_socket(conn: IOStream) -> socket.socket:
    """The socket of a connection tornado has finished with (detached, its writes flushed), out of tornado's IOLoop:
    the hub watches and writes it itself, and the IOStream, its buffers (two deques, 1.5 KiB), the futures and
    the request's header block it holds are freed. Plain sockets only: TLS ends in front of the server (nginx)."""
    if isinstance(conn, SSLIOStream):
        raise TypeError("event streams are served over plain sockets")
    sock = conn.socket
    IOLoop.current().remove_handler(sock)
    return sock


def raise_descriptor_limit() -> int:
    """Raise this process' soft limit of open files to the hard one: each event stream holds a descriptor, and
    distributions start services with 1,024. The soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # pragma: no cover - a hard limit the kernel refuses (nr_open)
            log.warning("cannot raise the open files limit", extra={"soft": soft, "hard": hard, "error": str(exc)})
            return soft
        return hard
    return soft
