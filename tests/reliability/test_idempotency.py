"""Idempotency-Key under concurrency and failures: never two effects, never an answer without its effect."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from server import make_app
from server.app import PetAPI
from tests.factories import Api, Response, assert_error, both_backends, serving, trigger, user_with_token
from tests.reliability.conftest import wide_api

CLIENTS = 20
PET = {"name": "Rex", "species": "dog"}
# A trigger per backend: refuse a write (MariaDB: SIGNAL, SQLite: RAISE; a statement refused, so a 500 on both), or
# make a pet's insert slow.
REFUSE = {"mysql": "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW"
                   " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'",
          "sqlite": "CREATE TRIGGER {name} BEFORE {event} ON {table} BEGIN SELECT RAISE(ABORT, 'refused'); END"}
SLOW = {"mysql": "CREATE TRIGGER {name} BEFORE INSERT ON pets FOR EACH ROW SET NEW.name = IF(SLEEP({seconds}) = 0,"
                 " NEW.name, NEW.name)",
        "sqlite": "CREATE TRIGGER {name} BEFORE INSERT ON pets BEGIN SELECT SLEEP({seconds}); END"}
FAILED = (500, 999)  # the server-error path, the SQL error in the log


async def count(app: PetAPI, sql: str, *args: object) -> int:
    row = await app.db.fetch_one(sql, args)
    assert row is not None
    return int(row[0])  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def second_worker(app: PetAPI) -> AsyncIterator[Api]:
    """Another application on the same database (its own connections, its own in-flight keys), served."""
    other = make_app(app.config)
    await other.startup()
    try:
        async with serving(other) as url:
            yield wide_api(url, CLIENTS)
    finally:
        await other.shutdown()


def assert_one_answer(answers: list[Response]) -> Response:
    """Every answer is the created pet (one first, the rest replays of it) or 409/1010; returns the first."""
    created = [a for a in answers if a.status == 201]
    firsts = [a for a in created if "Idempotent-Replayed" not in a.headers]
    assert len(firsts) == 1, [(a.status, a.body) for a in answers]
    for replay in created:
        assert replay.raw == firsts[0].raw
        assert replay.headers["Location"] == firsts[0].headers["Location"]
    for busy in (a for a in answers if a.status != 201):
        assert_error(busy, 409, 1010, "POST /v1/pets", "idempotent request in progress")
        assert busy.headers["Retry-After"] == "1"
    return firsts[0]


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_20_concurrent_requests_with_one_key_create_one_pet(app, http_server, base_url):
    api = wide_api(base_url, CLIENTS)
    user, token = await user_with_token(app)
    for _ in range(3):
        key = str(uuid.uuid4())
        answers = await asyncio.gather(*(api.post("/v1/pets", json=PET, token=token, headers={"Idempotency-Key": key})
                                         for _ in range(CLIENTS)))
        assert_one_answer(answers)
    assert await count(app, "SELECT COUNT(*) FROM pets WHERE owner_id = %s", user.id) == 3


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_requests_with_one_key_through_two_workers_create_one_pet(app, http_server, base_url):
    here = wide_api(base_url, CLIENTS)
    user, token = await user_with_token(app)
    async with second_worker(app) as there:
        for _ in range(3):
            key = str(uuid.uuid4())
            answers = await asyncio.gather(*(api.post("/v1/pets", json=PET, token=token,
                                                      headers={"Idempotency-Key": key})
                                             for _ in range(CLIENTS // 2) for api in (here, there)))
            assert_one_answer(answers)
    assert await count(app, "SELECT COUNT(*) FROM pets WHERE owner_id = %s", user.id) == 3


@both_backends
@pytest.mark.gen_test(timeout=60)
async def test_a_retry_through_another_worker_waits_for_the_first_and_replays_it(app, http_server, base_url, backend):
    here = wide_api(base_url)
    user, token = await user_with_token(app)
    key = str(uuid.uuid4())
    async with second_worker(app) as there, trigger(app, SLOW[backend].format(name="slow_pets", seconds=0.8)):
        first = asyncio.ensure_future(here.post("/v1/pets", json=PET, token=token, headers={"Idempotency-Key": key}))
        await asyncio.sleep(0.3)  # the first holds the key and sleeps in its insert
        started = time.monotonic()
        retry = await there.post("/v1/pets", json=PET, token=token, headers={"Idempotency-Key": key})
        waited = time.monotonic() - started
        original = await first
    assert original.status == 201, original.body
    assert retry.status == 201, retry.body
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.raw == original.raw
    assert waited > 0.2, waited  # it waited for the first one's commit, not answered beside it
    assert await count(app, "SELECT COUNT(*) FROM pets WHERE owner_id = %s", user.id) == 1


@both_backends
@pytest.mark.parametrize(("table", "event"), [("pets", "INSERT"), ("idempotency_keys", "UPDATE")],
                         ids=["effect-refused", "answer-refused"])
@pytest.mark.gen_test(timeout=60)
async def test_a_database_failure_stores_nothing_and_undoes_the_effect(app, api, backend, table, event):
    """Refused before the effect (the pet's insert) or after it (storing the answer): either way no pet, no key,
    and the retry runs afresh."""
    user, token = await user_with_token(app)
    key = str(uuid.uuid4())
    async with trigger(app, REFUSE[backend].format(name="refuse_writes", event=event, table=table)):
        failed = await api.post("/v1/pets", json=PET, token=token, headers={"Idempotency-Key": key})
        assert_error(failed, *FAILED, "POST /v1/pets")
    assert await count(app, "SELECT COUNT(*) FROM pets WHERE owner_id = %s", user.id) == 0
    assert await count(app, "SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = %s", key) == 0
    retried = await api.post("/v1/pets", json=PET, token=token, headers={"Idempotency-Key": key})
    assert retried.status == 201, retried.body
    assert "Idempotent-Replayed" not in retried.headers
    assert await count(app, "SELECT COUNT(*) FROM pets WHERE owner_id = %s", user.id) == 1
    assert await count(app, "SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = %s", key) == 1
