"""Exactly-once POSTs: `Idempotency-Key` (Stripe's semantics; draft-ietf-httpapi-idempotency-key-header).

The first request with a key reserves it (a row in idempotency_keys) in the transaction that also runs the
effect and stores the answer, so the effect and its stored answer commit together or not at all: a request
that fails (4xx, 503, 500) rolls its reservation back and a retry runs afresh. A retry replays the stored
answer; the same key on another method, path or body is 422/1011. While the first request runs, the
database holds its row's lock: a retry reaching another worker or instance waits for it and replays (or runs
afresh if it rolled back), a wait cut by db_statement_timeout answering 503/1008; one reaching the same worker
is answered 409/1010 with Retry-After at once, without taking a connection from the pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from server import periodic
from server.db import Database, Executor, IntegrityViolation, column, nullable
from server.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidParameter
from server.internals import response_header
from server.services import now_ms, utcnow

if TYPE_CHECKING:
    from server.handlers.base import BaseHandler

log = logging.getLogger("pet_api.idempotency")
KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # 1-255 visible ASCII characters (the API document states it too)
KEY_RE = re.compile(KEY_PATTERN)
STORED_HEADERS = ("Location", "ETag")
ANONYMOUS = "anon"  # the scope of keys sent without a token (registration)
PENDING = 0  # the status of a reservation whose transaction has not committed yet
ATTEMPTS = 3  # a key found taken but gone when read (its row expired and was purged) is tried again
RETRY_AFTER = "1"
PURGE_EVERY = 60.0  # seconds between purges of expired answers (or the retention, when shorter)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    fingerprint: str
    status: int
    headers: dict[str, str]
    body: bytes


def parse_key(raw: str) -> str:
    """The key of an Idempotency-Key header, or 400/1001 naming the header."""
    if KEY_RE.fullmatch(raw) is None:
        raise InvalidParameter(f"{KEY_HEADER} must be 1 to 255 visible ASCII characters",
                               errors=[{"field": KEY_HEADER, "message": "1 to 255 visible ASCII characters"}])
    return raw


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same request": sha256 (hex) of method, path and body bytes."""
    digest = hashlib.sha256(method.encode())
    digest.update(b" " + path.encode() + b"\n")
    digest.update(body)
    return digest.hexdigest()


async def reserve(db: Executor, *, scope: str, key: str, digest: str, retention_seconds: int) -> bool:
    """Take the key inside the caller's transaction; False when another request took it and committed. While
    that other request's transaction is open, the database makes this insert wait for its end."""
    try:
        await db.execute(
            "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, status, created_at, expires_at_ms)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (scope, key, digest, PENDING, utcnow(), now_ms() + retention_seconds * 1000))
    except IntegrityViolation:
        return False
    return True


async def store(db: Executor, *, scope: str, key: str, status: int, headers: dict[str, str], body: bytes) -> None:
    """Record the answer on the reserved key, in the transaction of its effect."""
    await db.execute_later("UPDATE idempotency_keys SET status = %s, headers = %s, body = %s WHERE scope = %s"
                           " AND idem_key = %s", (status, orjson.dumps(headers).decode(), body.decode(), scope, key))


async def find(db: Executor, *, scope: str, key: str) -> StoredAnswer | None:
    """The committed answer stored under the key, or None."""
    row = await db.fetch_one("SELECT fingerprint, status, headers, body FROM idempotency_keys"
                             " WHERE scope = %s AND idem_key = %s", (scope, key))
    if row is None:
        return None
    headers = nullable(row[2], str)
    return StoredAnswer(column(row[0], str), column(row[1], int), orjson.loads(headers) if headers else {},
                        (nullable(row[3], str) or "").encode())


async def forget_created(db: Executor, *, scope: str, location: str) -> None:
    """Delete, in the caller's transaction, the answers stored under the scope whose Location is `location`: what
    they created is gone, and a retry must not be told it exists (it runs afresh)."""
    stored = orjson.dumps({"Location": location})[1:-1].decode()  # as store() writes it; the closing quote ends it
    await db.execute_later("DELETE FROM idempotency_keys WHERE scope = %s AND INSTR(headers, %s) > 0",
                           (scope, stored))


async def purge(db: Executor) -> int:
    """Delete the answers kept longer than the retention; how many went."""
    result = await db.execute("DELETE FROM idempotency_keys WHERE expires_at_ms < %s", (now_ms(),))
    return result.rowcount


class IdempotencyKeys:
    """The application's keys: runs idempotent operations, remembers this process's requests in flight and
    purges expired answers in the background."""

    def __init__(self, *, retention_seconds: int) -> None:
        self.retention_seconds = retention_seconds
        self.purge_every = min(PURGE_EVERY, float(retention_seconds))
        self.in_flight: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    async def run(self, handler: BaseHandler, operation: Callable[[], Awaitable[None]]) -> None:
        """Run the operation under the request's Idempotency-Key: first time, with its answer stored in its
        transaction and sent after the commit; again, the stored answer with Idempotent-Replayed: true."""
        key = parse_key(handler.request.headers[KEY_HEADER])
        user = handler.current_user
        scope = ANONYMOUS if user is None else str(user.user_id)
        digest = fingerprint(handler.request.method or "", handler.request.path, handler.body)
        if (scope, key) in self.in_flight:
            raise IdempotencyInProgress(headers={"Retry-After": RETRY_AFTER})
        self.in_flight.add((scope, key))
        try:
            answer = await self._first_or_stored(handler, operation, scope, key, digest)
        finally:
            self.in_flight.discard((scope, key))
        if answer is None:
            return
        if answer.fingerprint != digest:
            raise IdempotencyKeyReused()
        if answer.status == PENDING:  # not written by this code: a reservation is only seen once committed
            raise IdempotencyInProgress(headers={"Retry-After": RETRY_AFTER})
        handler.set_status(answer.status)
        for name, value in answer.headers.items():
            handler.set_header(name, value)
        handler.set_header(REPLAYED_HEADER, "true")
        handler.finish(answer.body)

    async def _first_or_stored(self, handler: BaseHandler, operation: Callable[[], Awaitable[None]], scope: str,
                               key: str, digest: str) -> StoredAnswer | None:
        """None once the operation ran and its answer was committed and sent, else the answer stored earlier."""
        db = handler.application.db

        async def first_time(tx: Executor) -> bytes | None:
            """Reserve the key, run the operation and store its answer; None when the key was taken. The
            whole of it runs again when the cluster rolls it back for a conflict (run_transaction)."""
            if not await reserve(tx, scope=scope, key=key, digest=digest, retention_seconds=self.retention_seconds):
                return None
            handler.transaction, handler.held = tx, None  # a replayed attempt starts with no answer
            try:
                await operation()
            finally:
                handler.transaction = None
            held = handler.held
            if held is None:
                raise RuntimeError("an idempotent operation must answer with send()")
            headers = {name: value for name in STORED_HEADERS
                       if (value := response_header(handler, name)) is not None}
            await store(tx, scope=scope, key=key, status=handler.get_status(), headers=headers, body=held)
            return held

        for _ in range(ATTEMPTS):
            sent = await db.run_transaction(first_time)
            if sent is not None:  # committed: only now may the client learn of the effect
                handler.finish(sent)
                return None
            answer = await find(db, scope=scope, key=key)
            if answer is not None:
                return answer
        raise IdempotencyInProgress(headers={"Retry-After": RETRY_AFTER})

    def start(self, db: Database) -> None:
        """Purge expired answers in the background."""
        self._task = periodic.start_every(lambda: self.purge_every, lambda: purge(db),
                                          periodic.warn_failed(log, "idempotency purge"))

    async def stop(self) -> None:
        """Stop the background purge."""
        await periodic.stop(self._task)
