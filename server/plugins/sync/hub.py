"""The event streams' fan-out: one poller per worker reads what the change log gained since its last round (one
query however many streams are open), reads and renders one page per (user, position) among the streams it
concerns, and writes those same bytes to each of them itself (after its first page a stream is a small record of
its socket, token and position: streams.py). One timer beats for every stream; token expiry and revocation and
the drain end them from here too."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tornado.iostream import IOStream

from server import periodic
from server.auth import Principal
from server.errors import APIError, ServiceUnavailable, TokenExpired
from server.plugins.sync.cursor import Position
from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import log_head, new_entries, visible_pet_ids
from server.plugins.sync.streams import Stream, chunk, raise_descriptor_limit

if TYPE_CHECKING:
    from server.db import Database
    from server.services.revocations import RevocationCache

log = logging.getLogger("pet_api.sync")
T = TypeVar("T")
POLL_BATCH = 10_000  # log entries read per round at most; a longer backlog takes further rounds
READS_AT_ONCE = 8  # page reads in flight per round: the pool stays open to the other requests
PAGES_PER_ROUND = 20  # a stream catching up gets at most this many pages a round (then the next round goes on)
BEAT = b":\n\n"


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
        self._gone = self.close  # one bound method for every stream (it calls it when its client leaves)
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
        stream = Stream(conn, user, page.position, chunked=chunked, language=language, request=request,
                        gone=self._gone)
        stream.pending = page.has_more or self.head != head
        interest = self.users[user.user_id]
        interest.opening -= 1
        interest.streams.add(stream)
        self.streams.add(stream)
        return stream

    def close(self, stream: Stream) -> None:
        """Forget a stream and close its connection (its client left or cannot keep up)."""
        if stream in self.streams:
            self._drop(stream)
            stream.close()

    def end(self, stream: Stream, error: APIError | None = None) -> None:
        """End a stream: the error event if any, the HTTP end of the body, then the connection closes."""
        if stream in self.streams:
            self._drop(stream)
            stream.finish(b"" if error is None or self.renderer is None else
                          self.renderer.error(error, stream.language, stream.request))

    def _drop(self, stream: Stream) -> None:
        self.streams.discard(stream)
        user_id = stream.user.user_id
        interest = self.users[user_id]
        interest.streams.discard(stream)
        self._forget(user_id, interest)

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
        await sequence(db, replay=False)  # rows committed anywhere get their seq (another instance may not have nudged)
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
        await revocations.catch_up(db)  # a no-op unless its background round skipped a read or it is stale
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
                    stream.send(framed if stream.chunked else page.events)
        return page.has_more

    async def _heartbeat(self) -> None:
        framed = chunk(BEAT)
        for stream in list(self.streams):
            stream.send(framed if stream.chunked else BEAT)
