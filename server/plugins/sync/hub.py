"""The event streams' fan-out: one poller per worker reads what the change log gained since its last round (one
query however many streams are open) and wakes only the streams it concerns; each woken stream then reads its
own page. Streams of one user at one position share that read. Heartbeats, token expiry and revocation, and
the drain are driven from here too, so an idle stream costs no timer and no task of its own."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from server import periodic
from server.auth import Principal
from server.errors import APIError, TokenExpired
from server.plugins.sync.sequencer import sequence
from server.plugins.sync.services import new_entries

if TYPE_CHECKING:
    from server.db import Database
    from server.services.revocations import RevocationCache

log = logging.getLogger("pet_api.sync")
T = TypeVar("T")
POLL_BATCH = 10_000  # log entries read per round at most; a longer backlog takes further rounds


class Stream:
    """One open event stream, as the hub sees it."""

    __slots__ = ("beat_due", "ended", "error", "pending", "pets", "user", "waiter")

    def __init__(self, user: Principal, pets: set[int]) -> None:
        self.user = user
        self.pets = pets  # the pets whose changes wake it (its user's; a pet they gain is added by the poller)
        self.waiter: asyncio.Future[None] | None = None  # a bare future, lighter than an Event per stream
        self.pending = True  # the log may hold something for it: read a page
        self.beat_due = False
        self.ended = False
        self.error: APIError | None = None  # sent as `event: error` before the stream closes

    async def wait(self) -> None:
        """Until the next wake-up (returns at once when something is due)."""
        if self.pending or self.beat_due or self.ended:
            return
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def _notify(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def wake(self) -> None:
        self.pending = True
        self._notify()

    def beat(self) -> None:
        self.beat_due = True
        self._notify()

    def end(self, error: APIError | None = None) -> None:
        """Close the stream at its next turn (with the error event, if any)."""
        if not self.ended:
            self.ended, self.error = True, error
            self._notify()


class EventHub:
    """The streams of one worker and the poller that feeds them."""

    def __init__(self, *, poll_seconds: float, heartbeat_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.streams: set[Stream] = set()
        self.by_user: dict[int, set[Stream]] = {}
        self.by_pet: dict[int, set[Stream]] = {}
        self.head = 0
        self.closing = False
        self.rounds = 0  # poll queries made (the test of "one query per interval" reads it)
        self._reads: dict[tuple[object, ...], asyncio.Future[Any]] = {}  # key -> the read in progress
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, db: Database, revocations: RevocationCache) -> None:
        """Start the rounds (they query nothing while no stream is open: an idle worker's pool stays idle)."""
        self._tasks = [
            periodic.start_every(lambda: self.poll_seconds, lambda: self.poll(db, revocations),
                                 lambda exc: log.exception("event poll failed")),
            periodic.start_every(lambda: self.heartbeat_seconds, self._heartbeat,
                                 lambda exc: log.exception("heartbeat failed")),
        ]

    async def stop(self) -> None:
        self.close_all()
        for task in self._tasks:
            await periodic.stop(task)
        self._tasks = []

    def close_all(self) -> None:
        """The drain: every stream ends now (clients reconnect elsewhere with their last id); no new one opens."""
        self.closing = True
        for stream in list(self.streams):
            stream.end()

    # ---- streams
    def open(self, user: Principal, pets: set[int], head: int) -> Stream:
        """Register a stream; `head`: the log's head read before its first page (the poller resumes from there when
        it was idle, so nothing committed after that read goes unnoticed)."""
        self.head = head if not self.streams else min(self.head, head)
        stream = Stream(user, pets)
        self.streams.add(stream)
        self.by_user.setdefault(user.user_id, set()).add(stream)
        self._index(stream, pets, add=True)
        return stream

    def close(self, stream: Stream) -> None:
        self.streams.discard(stream)
        self._drop(self.by_user, stream.user.user_id, stream)
        self._index(stream, stream.pets, add=False)

    def _gained(self, stream: Stream, pet_id: int) -> None:
        """A pet the stream's user was given (created, shared): its later changes wake the stream too. A pet they
        lose stays in the index until the stream closes: a needless wake-up at worst, never a missed one."""
        if pet_id not in stream.pets:
            stream.pets.add(pet_id)
            self.by_pet.setdefault(pet_id, set()).add(stream)

    def _index(self, stream: Stream, pets: set[int], *, add: bool) -> None:
        for pet_id in pets:
            if add:
                self.by_pet.setdefault(pet_id, set()).add(stream)
            else:
                self._drop(self.by_pet, pet_id, stream)

    @staticmethod
    def _drop(index: dict[int, set[Stream]], key: int, stream: Stream) -> None:
        streams = index.get(key)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del index[key]

    async def shared(self, key: tuple[object, ...], fetch: Callable[[], Awaitable[T]]) -> T:
        """fetch() once for every stream asking for the same key meanwhile: a user's streams at one position share
        a page (after a drain elsewhere they come back at once, mostly from the same last event)."""
        shared = self._reads.get(key)
        if shared is None:
            shared = self._reads[key] = asyncio.ensure_future(fetch())
            shared.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(shared)

    # ---- the rounds
    async def poll(self, db: Database, revocations: RevocationCache) -> None:
        """One query for what the log gained; wake the streams it concerns; end those whose token is no longer
        good (expired, revoked: within the revocation cache's refresh bound)."""
        if not self.streams:
            return
        self.rounds += 1
        await sequence(db, replay=False)  # rows committed anywhere get their seq (another instance may not have nudged)
        entries = await new_entries(db, after=self.head, limit=POLL_BATCH)
        for _seq, pet_id, member in entries:
            if member is not None and pet_id is not None:
                for stream in self.by_user.get(member, ()):
                    self._gained(stream, pet_id)
                    stream.wake()
            for stream in self.by_pet.get(pet_id, ()) if pet_id is not None else ():
                stream.wake()
        if entries:
            self.head = max(self.head, entries[-1][0])
        now = time.time()
        for stream in list(self.streams):
            try:
                if now >= stream.user.expires_at:
                    raise TokenExpired()
                revocations.check(stream.user)
            except APIError as exc:
                stream.end(exc)

    async def _heartbeat(self) -> None:
        for stream in self.streams:
            stream.beat()
