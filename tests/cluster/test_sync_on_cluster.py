"""The change log over Galera: writers on instances whose writers are different nodes (the counter row is certified,
conflicting commits are replayed), a client syncing continuously through a third node and one that stops, waits
and resumes: both end with exactly the cluster's state."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from typing import Any

import pytest

from tests.cluster.conftest import instances, owner_token
from tests.factories import Api
from tests.plugins.sync.client import apply

pytestmark = pytest.mark.cluster
SECONDS = float(os.environ.get("PET_API_SYNC_TEST_SECONDS", "8"))
WRITERS = 10


async def writer(api: Api, token: str, seed: int, until: float, answers: collections.Counter[int]) -> None:
    """Creates, patches and deletes its own pets and records until `until`."""
    rng, pets, records = random.Random(seed), [], []  # type: ignore[var-annotated]
    while time.monotonic() < until:
        roll = rng.random()
        if roll < 0.3 or not pets:
            response = await api.post("/v1/pets", json={"name": f"p{seed}", "species": "cat"}, token=token)
            if response.status == 201:
                pets.append(response.body["data"]["id"])
        elif roll < 0.55:
            response = await api.patch(f"/v1/pets/{rng.choice(pets)}", json={"name": f"n{rng.random()}"}, token=token)
        elif roll < 0.65:
            pet = pets.pop(rng.randrange(len(pets)))
            records = [r for r in records if r[0] != pet]
            response = await api.delete(f"/v1/pets/{pet}", token=token)
        elif roll < 0.9:
            pet = rng.choice(pets)
            response = await api.post(f"/v1/pets/{pet}/records", json={"kind": "weight", "date": "2024-01-01"},
                                      token=token)
            if response.status == 201:
                records.append((pet, response.body["data"]["id"]))
        elif records:
            pet, record = records.pop(rng.randrange(len(records)))
            response = await api.delete(f"/v1/pets/{pet}/records/{record}", token=token)
        else:
            continue
        answers[response.status] += 1


async def sync_until_quiet(api: Api, token: str, state: dict[tuple[str, int], Any], cursor: str | None) -> str:
    while True:
        response = await api.get("/v1/sync?limit=100" + (f"&cursor={cursor}" if cursor else ""), token=token)
        assert response.status == 200, response.body
        apply(state, response.body["data"]["changes"])
        cursor = response.body["data"]["cursor"]
        if not response.body["data"]["has_more"]:
            return cursor


async def server_state(api: Api, token: str) -> dict[tuple[str, int], Any]:
    """What the GETs return: every page of pets (by cursor), and each pet's records."""
    state: dict[tuple[str, int], Any] = {}
    cursor = None
    while True:
        pets = await api.get("/v1/pets?limit=100" + (f"&cursor={cursor}" if cursor else ""), token=token)
        for pet in pets.body["data"]:
            state[("pet", pet["id"])] = pet
            records = await api.get(f"/v1/pets/{pet['id']}/records?limit=100", token=token)
            assert records.body["page"]["next_cursor"] is None
            state.update((("record", r["id"]), r) for r in records.body["data"])
        cursor = pets.body["page"]["next_cursor"]
        if cursor is None:
            return state


@pytest.mark.gen_test(timeout=180)
async def test_clients_syncing_while_writers_on_two_nodes_write_end_with_the_clusters_exact_state(galera):
    async with instances(galera, [1, 2, 3]) as apis:
        _, token = await owner_token(apis[0])
        live: dict[tuple[str, int], Any] = {}
        paused: dict[tuple[str, int], Any] = {}
        cursor = await sync_until_quiet(apis[2], token, live, None)
        paused_cursor = await sync_until_quiet(apis[2], token, paused, None)
        answers: collections.Counter[int] = collections.Counter()
        until = time.monotonic() + SECONDS
        writing = asyncio.gather(*(writer(apis[n % 2], token, n, until, answers) for n in range(WRITERS)))
        pages = 0
        while time.monotonic() < until:
            cursor = await sync_until_quiet(apis[2], token, live, cursor)
            pages += 1
            if not paused and time.monotonic() > until - SECONDS / 2:
                paused_cursor = await sync_until_quiet(apis[2], token, paused, paused_cursor)
        await writing
        # 503: a transaction that lost certification on the counter row 10 times running (writers on two nodes all
        # conflict on it); replayed whole each time, so it changed nothing and a client retries it.
        assert set(answers) <= {200, 201, 503}, answers
        cursor = await sync_until_quiet(apis[2], token, live, cursor)
        paused_cursor = await sync_until_quiet(apis[2], token, paused, paused_cursor)
        final = await server_state(apis[0], token)
        print(f"\nsync over Galera: {WRITERS} writers through nodes 1 and 2 for {SECONDS:.0f} s, "
              f"{sum(answers.values())} writes {dict(answers)}; the live client synced {pages} times through node 3; "
              f"final state {len(final)} objects; {answers[503]} writes answered 503 after their replays")
        assert sum(answers.values()) > 50
        assert live == final
        assert paused == final
