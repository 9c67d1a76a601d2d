"""No change skipped: clients syncing while many writers on two workers create, patch and delete pets and records end
with exactly the server's state, whether they sync continuously or stop, wait and resume from their last cursor."""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from typing import Any

from server.db import connect
from server.plugins.sync.services import log_head
from tests import conftest
from tests.plugins.sync.client import apply
from tests.processes import get, login, request

WRITERS = 12
SECONDS = float(os.environ.get("PET_API_SYNC_TEST_SECONDS", "10"))
RECORD = {"kind": "weight", "date": "2024-01-01"}


class Writer(threading.Thread):
    """Creates, patches and deletes its own pets and their records until stopped; counts the answers."""

    def __init__(self, port: int, token: str, seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.stop, self.rng = port, token, stop, random.Random(seed)
        self.pets: list[int] = []
        self.records: list[tuple[int, int]] = []
        self.answers: collections.Counter[tuple[str, int]] = collections.Counter()

    def call(self, what: str, method: str, path: str, json: Any = None) -> Any:
        reply = request(self.port, method, path, json=json, token=self.token)
        self.answers[(what, reply.status)] += 1
        return reply.json() if reply.status in (200, 201) else None

    def run(self) -> None:
        while not self.stop.is_set():
            roll = self.rng.random()
            if roll < 0.25 or not self.pets:
                body = self.call("create pet", "POST", "/v1/pets", {"name": f"p{self.rng.random()}", "species": "cat"})
                self.pets.append(body["data"]["id"])
            elif roll < 0.5:
                self.call("patch pet", "PATCH", f"/v1/pets/{self.rng.choice(self.pets)}",
                          {"name": f"n{self.rng.random()}", "status": self.rng.choice(["available", "pending"])})
            elif roll < 0.58:
                pet = self.pets.pop(self.rng.randrange(len(self.pets)))
                self.records = [r for r in self.records if r[0] != pet]
                self.call("delete pet", "DELETE", f"/v1/pets/{pet}")
            elif roll < 0.85:
                pet = self.rng.choice(self.pets)
                body = self.call("add record", "POST", f"/v1/pets/{pet}/records",
                                 {**RECORD, "note": str(self.rng.random())})
                self.records.append((pet, body["data"]["id"]))
            elif self.records:
                pet, record = self.records.pop(self.rng.randrange(len(self.records)))
                self.call("delete record", "DELETE", f"/v1/pets/{pet}/records/{record}")


def sync_page(port: int, token: str, cursor: str | None, limit: int = 100) -> dict[str, Any]:
    reply = get(port, f"/v1/sync?limit={limit}" + (f"&cursor={cursor}" if cursor else ""), token=token)
    assert reply.status == 200, reply.body
    data: dict[str, Any] = reply.json()["data"]
    return data


def sync_until_quiet(port: int, token: str, state: dict[tuple[str, int], Any], cursor: str | None) -> str | None:
    while True:
        page = sync_page(port, token, cursor)
        apply(state, page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return cursor


def server_state(port: int, token: str) -> dict[tuple[str, int], Any]:
    """What the ordinary GETs return, every page."""
    state: dict[tuple[str, int], Any] = {}
    pets = get_all(port, token, "/v1/pets")
    for pet in pets:
        state[("pet", pet["id"])] = pet
        state.update((("record", r["id"]), r) for r in get_all(port, token, f"/v1/pets/{pet['id']}/records"))
    return state


def get_all(port: int, token: str, path: str) -> list[Any]:
    items: list[Any] = []
    while True:
        reply = get(port, f"{path}?limit=100&offset={len(items)}", token=token)
        assert reply.status == 200, reply.body
        items += reply.json()["data"]
        if len(items) >= reply.json()["page"]["total"]:
            return items


def test_clients_syncing_while_writers_on_two_workers_write_end_with_the_servers_exact_state(servers, database):
    server = servers.start(workers=2)
    port = server.port
    _, token = login(port)
    live: dict[tuple[str, int], Any] = {}
    cursor = sync_until_quiet(port, token, live, None)
    paused: dict[tuple[str, int], Any] = {}
    paused_cursor = sync_until_quiet(port, token, paused, None)
    stop = threading.Event()
    writers = [Writer(port, token, seed, stop) for seed in range(WRITERS)]
    for writer in writers:
        writer.start()
    pages = changes = 0
    started = time.monotonic()
    while time.monotonic() - started < SECONDS:
        page = sync_page(port, token, cursor, limit=50)
        apply(live, page["changes"])
        cursor, pages, changes = page["cursor"], pages + 1, changes + len(page["changes"])
        if time.monotonic() - started > SECONDS / 2 and paused_cursor is not None and not paused:
            paused_cursor = sync_until_quiet(port, token, paused, paused_cursor)  # then it waits till the end
    stop.set()
    for writer in writers:
        writer.join(30)
    answers = sum((w.answers for w in writers), collections.Counter())
    assert {status for (_, status) in answers} <= {200, 201}, answers
    cursor = sync_until_quiet(port, token, live, cursor)
    paused_cursor = sync_until_quiet(port, token, paused, paused_cursor)
    final = server_state(port, token)
    fresh: dict[tuple[str, int], Any] = {}
    sync_until_quiet(port, token, fresh, None)
    print(f"\nconvergence: {WRITERS} writers on 2 workers for {SECONDS:.0f} s: {sum(answers.values())} writes "
          f"({dict(collections.Counter({k[0]: v for k, v in answers.items()}))}); the live client read {pages} pages "
          f"with {changes} changes; final state {len(final)} objects; log head {log_seq(database)}")
    assert sum(answers.values()) > 200
    assert live == final
    assert paused == final
    assert fresh == final


def log_seq(database: str) -> int:
    async def head() -> int:
        db = await connect(conftest.test_config(database_url=database))
        try:
            return await log_head(db)
        finally:
            await db.close()

    return conftest.run_async(head())
