"""Clients that leave mid-request, and statements cancelled mid-flight, leave nothing broken behind:
every later request succeeds and carries only its own data."""

from __future__ import annotations

import asyncio
import functools
import random
import socket
import struct

import pytest

from tests.factories import both_backends, user_with_token
from tests.reliability.conftest import connections_in_use, wide_api

LEAVERS = 100
FOLLOWERS = 1000
USERS = 20


def _raw_request(port: int, request: bytes, *, reset: bool) -> None:
    """Send (part of) a request and go away, politely (FIN) or not (RST)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(request)


async def _leave(port: int, n: int, token: str, pet_id: int) -> None:
    auth = f"Authorization: Bearer {token}\r\n"
    body = b'{"name": "Gone", "species": "cat"}'
    kinds = [
        # a whole request to a slow-ish list, then gone before the answer
        f"GET /v1/pets?limit=100&q=e&sort=-name HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode(),
        # a write, then gone
        (f"PATCH /v1/pets/{pet_id} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
         f"Content-Length: {len(body)}\r\n\r\n").encode() + body,
        # half a body, then gone
        (f"POST /v1/pets HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
         f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:10],
        # half the headers, then gone
        f"GET /v1/pets/{pet_id} HTTP/1.1\r\nHost: x\r\n{auth}".encode(),
    ]
    await asyncio.get_running_loop().run_in_executor(None, functools.partial(_raw_request, port, kinds[n % 4],
                                                                             reset=n % 3 == 0))


@pytest.mark.gen_test(timeout=120)
async def test_clients_leaving_mid_request_break_nothing(app, http_server, base_url, http_port):
    api = wide_api(base_url, 50)
    users = [await user_with_token(app) for _ in range(USERS)]
    pets: dict[int, list[int]] = {}
    for user, token in users:
        pets[user.id] = []
        for i in range(3):
            created = await api.post("/v1/pets", json={"name": f"Pet {user.id}-{i}", "species": "dog"}, token=token)
            assert created.status == 201
            pets[user.id].append(created.body["data"]["id"])
    victim, victim_token = users[0]
    await asyncio.gather(*(_leave(http_port, n, victim_token, pets[victim.id][0]) for n in range(LEAVERS)))
    await asyncio.sleep(0.5)  # let the abandoned handlers run to their end

    rng = random.Random(8)
    limit = asyncio.Semaphore(50)

    async def follow(n: int) -> None:
        user, token = users[rng.randrange(USERS)]
        pet_id = rng.choice(pets[user.id])
        async with limit:
            if n % 3 == 0:
                r = await api.get("/v1/pets?limit=100", token=token)
                assert r.status == 200, r.body
                assert sorted(p["id"] for p in r.body["data"]) == sorted(pets[user.id])
                assert {p["owner_id"] for p in r.body["data"]} == {user.id}
            elif n % 3 == 1:
                r = await api.get(f"/v1/pets/{pet_id}", token=token)
                assert r.status == 200, r.body
                assert (r.body["data"]["id"], r.body["data"]["owner_id"]) == (pet_id, user.id)
            else:
                r = await api.patch(f"/v1/pets/{pet_id}", json={"breed": f"b{n}"}, token=token)
                assert r.status == 200, r.body
                assert (r.body["data"]["id"], r.body["data"]["owner_id"], r.body["data"]["breed"]) == (
                    pet_id, user.id, f"b{n}")

    await asyncio.gather(*(follow(n) for n in range(FOLLOWERS)))
    assert await connections_in_use(app.db) == 0


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_statements_cancelled_mid_flight_leave_no_stray_results(app):
    """Cancelled statements (and transactions) must not hand their late replies to the next borrower."""
    db = app.db
    sleep = "SELECT SLEEP(0.2), %s"

    async def in_transaction(n: int) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO token_revocations (jti, expires_at_ms) VALUES (%s, %s)", (f"c{n}", 1))
            await tx.fetch_one(sleep, (n,))

    victims = [asyncio.ensure_future(db.fetch_one(sleep, (n,)) if n % 2 else in_transaction(n))
               for n in range(LEAVERS)]
    await asyncio.sleep(0.05)
    for task in victims:
        task.cancel()
    results = await asyncio.gather(*victims, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError | Exception) for r in results)
    assert all(not isinstance(r, Exception) or r.__class__.__name__ == "ServiceUnavailable" for r in results)
    # No cancelled transaction half-happened.
    assert await db.fetch_one("SELECT COUNT(*) FROM token_revocations WHERE jti LIKE 'c%%'") == (0,)

    limit = asyncio.Semaphore(app.config.db_pool_max * 2)

    async def check(n: int) -> None:
        async with limit:
            if n % 10 == 0:
                async with db.transaction() as tx:
                    row = await tx.fetch_one("SELECT %s, %s", (n, f"t{n}"))
            else:
                row = await db.fetch_one("SELECT %s, %s", (n, f"s{n}"))
        assert tuple(row) == (n, f"t{n}" if n % 10 == 0 else f"s{n}")

    await asyncio.gather(*(check(n) for n in range(FOLLOWERS)))
    assert await connections_in_use(db) == 0  # the background work (revocations, mail, sync) gives its own back
