"""Failover under write load on the real cluster: the writer node killed (kill -9) or frozen (SIGSTOP), two of
three nodes lost. Every answer is 201 or 503/1008 with Retry-After, none outlives the configured timeouts,
every instance writes again within FAILOVER_WINDOW, and every acknowledged write is on every node afterwards.
Under load each pet is POSTed with an Idempotency-Key and a 503 is retried with the same key through the next
instance, as a client behind nginx would: each key ends as exactly one pet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.cluster.conftest import REQUEST_BOUND, instances, owner_token
from tests.factories import Api, Response
from tests.galera import DATABASE, GaleraCluster

pytestmark = pytest.mark.cluster

# From the fault to an instance's next acknowledged write: detection (a refused connection at once; a frozen
# node after one health check of db_connect_timeout) plus Galera's eviction of the silent node, during which
# commits on the new writer wait (~3.5 s with the shipped settings). Measured: README "Scale-out".
FAILOVER_WINDOW = 6.0
CLIENTS = 6
REJOIN_TIMEOUT = 60.0
RETRY_GRACE = 15.0  # a write still answered 503 at the end of the load is retried for this long at most
RETRY_PAUSE = 0.2


@dataclass
class Answer:
    instance: int
    started: float
    ended: float
    status: int
    body: object
    retry_after: str | None


@dataclass
class Load:
    """What the writing clients saw; times are relative to the fault."""

    answers: list[Answer] = field(default_factory=list)
    fault_at: float = 0.0

    def created(self) -> set[int]:
        """The ids of acknowledged pets."""
        return {a.body["data"]["id"] for a in self.answers if a.status == 201}  # type: ignore[index]

    def unexpected(self) -> list[Answer]:
        """Answers other than 201, or 503 without error 1008 and Retry-After."""
        return [a for a in self.answers if not (a.status == 201 or (
            a.status == 503 and isinstance(a.body, dict) and a.body.get("error_code") == 1008 and a.retry_after))]

    def slowest(self) -> float:
        return max(a.ended - a.started for a in self.answers)

    def back_after(self, instance: int) -> float:
        """Seconds from the fault until the instance acknowledged a write it was sent after the fault."""
        ends = [a.ended for a in self.answers
                if a.instance == instance and a.status == 201 and a.started > self.fault_at]
        assert ends, f"instance {instance} never wrote again"
        return min(ends) - self.fault_at


async def _post(api: Api, instance: int, token: str, number: int, key: str | None = None) -> Answer:
    started = time.monotonic()
    headers = {"Idempotency-Key": key} if key else None
    response = await api.post("/v1/pets", json={"name": f"load {number}", "species": "dog"}, token=token,
                              headers=headers)
    return Answer(instance, started, time.monotonic(), response.status, response.body,
                  response.headers.get("Retry-After"))


async def write_load(apis: list[Api], token: str, *, seconds: float, fault_at: float,
                     fault: Callable[[], None], later: tuple[float, Callable[[], None]] | None = None) -> Load:
    """CLIENTS clients spread over the instances POST pets for ``seconds``; ``fault`` runs ``fault_at`` seconds
    in (and ``later``'s action at its time)."""
    load = Load()
    start = time.monotonic()
    end = start + seconds
    numbers = iter(range(1_000_000))

    async def client(c: int) -> None:
        while time.monotonic() < end:
            number = next(numbers)
            key = f"load-{token[-12:]}-{number}"
            for attempt in range(1_000):  # bounded by RETRY_GRACE below
                instance = (c + attempt) % len(apis)
                answer = await _post(apis[instance], instance, token, number, key)
                load.answers.append(answer)
                if answer.status != 503 or time.monotonic() > end + RETRY_GRACE:
                    break
                await asyncio.sleep(RETRY_PAUSE)
            await asyncio.sleep(0.02)

    async def faults() -> None:
        await asyncio.sleep(fault_at)
        load.fault_at = time.monotonic()
        fault()
        if later is not None:
            await asyncio.sleep(later[0] - fault_at)
            later[1]()

    await asyncio.gather(faults(), *(client(c) for c in range(CLIENTS)))
    return load


async def assert_acknowledged_everywhere(cluster: GaleraCluster, owner: int, acknowledged: set[int]) -> None:
    """Once every node is back and Synced: each holds every acknowledged pet, and the tables are identical."""
    await asyncio.to_thread(cluster.heal, REJOIN_TIMEOUT)
    for i in (1, 2, 3):
        rows = await asyncio.to_thread(
            cluster.query, i, f"SELECT id FROM `{DATABASE}`.pets WHERE owner_id = %s", (owner,), causal=True)  # noqa: S608
        missing = acknowledged - {row[0] for row in rows}
        assert not missing, f"node {i} lacks {len(missing)} acknowledged pets"
        twice = await asyncio.to_thread(
            cluster.query, i, f"SELECT name, COUNT(*) FROM `{DATABASE}`.pets WHERE owner_id = %s"  # noqa: S608
            " GROUP BY name HAVING COUNT(*) > 1", (owner,), causal=True)
        assert list(twice) == [], f"node {i}: one Idempotency-Key created two pets: {twice[:5]}"
    checksums = await asyncio.to_thread(cluster.checksum, "pets")
    assert sorted(checksums) == [1, 2, 3] and len(set(checksums.values())) == 1, checksums


def report(name: str, load: Load, instances_count: int) -> str:
    statuses: dict[int, int] = {}
    for answer in load.answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    windows = [round(load.back_after(i), 2) for i in range(instances_count)]
    return f"{name}: statuses {statuses}, back after {windows} s, slowest answer {load.slowest():.2f} s"


def _all_ready(ready: Response) -> bool:
    return ready.status == 200 and [n["state"] for n in ready.body["data"]["nodes"]] == ["ready"] * 3


@pytest.mark.gen_test(timeout=120)
async def test_kill_9_of_the_writer_under_write_load_fails_over_and_loses_no_acknowledged_write(galera, capsys):
    async with instances(galera, [1, 1]) as apis:
        owner, token = await owner_token(apis[0])
        load = await write_load(apis, token, seconds=10, fault_at=3, fault=lambda: galera.kill(1))
        ready = await apis[1].get("/v1/health/ready")

    with capsys.disabled():
        print("\n" + report("kill -9 of the writer", load, 2))
    assert load.unexpected() == []
    assert {a.instance for a in load.answers if a.status == 201 and a.ended < load.fault_at} == {0, 1}
    assert all(load.back_after(i) < FAILOVER_WINDOW for i in (0, 1))
    assert load.slowest() < REQUEST_BOUND
    assert ready.status == 200
    assert [(n["state"], n["writer"]) for n in ready.body["data"]["nodes"]] == [
        ("down", False), ("ready", True), ("ready", False)]
    await assert_acknowledged_everywhere(galera, owner, load.created())


@pytest.mark.gen_test(timeout=120)
async def test_a_writer_frozen_for_10_s_under_write_load_fails_over_and_loses_no_acknowledged_write(galera, capsys):
    async with instances(galera, [1, 1]) as apis:
        owner, token = await owner_token(apis[0])
        load = await write_load(apis, token, seconds=13, fault_at=1.5, fault=lambda: galera.freeze(1),
                                later=(11.5, lambda: galera.thaw(1)))

    with capsys.disabled():
        print("\n" + report("SIGSTOP of the writer for 10 s", load, 2))
    assert load.unexpected() == []
    assert all(load.back_after(i) < FAILOVER_WINDOW for i in (0, 1))
    assert load.slowest() < REQUEST_BOUND
    await assert_acknowledged_everywhere(galera, owner, load.created())


@pytest.mark.gen_test(timeout=150)
async def test_with_two_of_three_nodes_killed_requests_answer_503_in_time_and_service_comes_back_by_itself(
        galera, capsys):
    async with instances(galera, [1, 2]) as apis:
        _, token = await owner_token(apis[0])
        galera.kill(2)
        galera.kill(3)
        try:
            # Node 1 stalls, then leaves the primary component: every answer is a bounded 503 until then.
            deadline = time.monotonic() + 15
            answers = []
            while time.monotonic() < deadline:
                answers.append(await _post(apis[0], 0, token, 0))
                answers.append(await _post(apis[1], 1, token, 0))
                if answers[-1].status == answers[-2].status == 503 and answers[-1].ended - answers[-1].started < 1:
                    break
            assert answers[-1].body == {"error_code": 1008, "message": "service unavailable",
                                        "request": "POST /v1/pets"}
            assert answers[-1].retry_after == "5"
            assert max(a.ended - a.started for a in answers) < REQUEST_BOUND
            assert {a.status for a in answers} <= {201, 503}
            ready = await apis[0].get("/v1/health/ready")
            assert (ready.status, ready.body["error_code"]) == (503, 1008)
        finally:
            # A majority lost by crash: Galera keeps the survivor non-primary until an operator bootstraps it
            # (deploy/galera/README.md); pet-api itself is not restarted.
            galera.query(1, "SET GLOBAL wsrep_provider_options = 'pc.bootstrap=YES'")
        bootstrapped = time.monotonic()
        while (back := await _post(apis[1], 1, token, 1)).status != 201:
            assert back.status == 503 and time.monotonic() - bootstrapped < 20, back.body
            await asyncio.sleep(0.2)
        with capsys.disabled():
            print(f"\ntwo of three killed: slowest answer {max(a.ended - a.started for a in answers):.2f} s, "
                  f"writes again {time.monotonic() - bootstrapped:.2f} s after the bootstrap")
        await asyncio.to_thread(galera.heal, REJOIN_TIMEOUT)
        deadline = time.monotonic() + 20
        while not _all_ready(ready := await apis[1].get("/v1/health/ready")):
            assert time.monotonic() < deadline, ready.body
            await asyncio.sleep(0.2)
        assert (await _post(apis[0], 0, token, 2)).status == 201


@pytest.mark.gen_test(timeout=120)
async def test_with_two_of_three_nodes_frozen_requests_answer_503_in_time_and_service_comes_back_by_itself(
        galera, capsys):
    async with instances(galera, [1, 2]) as apis:
        _, token = await owner_token(apis[0])
        galera.freeze(2)
        galera.freeze(3)
        try:
            deadline = time.monotonic() + 15
            answers: list[Answer] = []
            while time.monotonic() < deadline and not (answers and answers[-1].status == 503
                                                       and answers[-1].ended - answers[-1].started < 1):
                answers.append(await _post(apis[0], 0, token, 0))
            assert answers[-1].body == {"error_code": 1008, "message": "service unavailable",
                                        "request": "POST /v1/pets"}
            assert max(a.ended - a.started for a in answers) < REQUEST_BOUND
        finally:
            galera.thaw(2)
            galera.thaw(3)
        thawed = time.monotonic()
        while (back := await _post(apis[1], 1, token, 1)).status != 201:  # no operator, no restart
            assert back.status == 503 and time.monotonic() - thawed < 30, back.body
            await asyncio.sleep(0.2)
        with capsys.disabled():
            print(f"\ntwo of three frozen: slowest answer {max(a.ended - a.started for a in answers):.2f} s, "
                  f"writes again {time.monotonic() - thawed:.2f} s after the thaw")
        # The instance on node 1 comes back by itself too: its node check marks node 1 ready at its next round.
        while (back := await _post(apis[0], 0, token, 2)).status != 201:
            assert back.status == 503 and time.monotonic() - thawed < 30, back.body
            await asyncio.sleep(0.2)


async def _writer(api: Api) -> str | None:
    ready = await api.get("/v1/health/ready")
    assert ready.status == 200, ready.body
    return ready.body["data"]["writer"]


@pytest.mark.gen_test(timeout=60)
async def test_a_writer_that_stops_being_synced_hands_over_and_takes_the_writes_back_once_synced_again(galera):
    async with instances(galera, [1], db_failback_after=1.0) as (api,):
        _, token = await owner_token(api)
        node1, node2 = (galera.server_url(i).split("@", 1)[1] for i in (1, 2))
        assert await _writer(api) == node1
        galera.query(1, "SET GLOBAL wsrep_desync = ON")  # as a donor does: Donor/Desynced, not Synced
        try:
            desynced = time.monotonic()
            while (writer := await _writer(api)) == node1:
                assert time.monotonic() - desynced < 5, "still writing to a desynced node"
                await asyncio.sleep(0.1)
            assert writer == node2
            states = (await api.get("/v1/health/ready")).body["data"]["nodes"]
            assert [(n["state"], n["detail"]) for n in states][0] == ("not_ready", "Donor/Desynced")
            assert (await _post(api, 0, token, 0)).status == 201  # through node 2
        finally:
            galera.query(1, "SET GLOBAL wsrep_desync = OFF")
        synced = time.monotonic()
        while await _writer(api) != node1:
            assert time.monotonic() - synced < 10, "the first node did not take the writes back"
            await asyncio.sleep(0.1)
        assert time.monotonic() - synced >= 0.8  # after the hold-down (db_failback_after 1 s)
        assert (await _post(api, 0, token, 1)).status == 201
