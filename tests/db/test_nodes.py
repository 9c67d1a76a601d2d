"""Multi-host database URLs on one real MariaDB (the Galera cases are in tests/cluster/): parsing, a dead first
host at start, the node states that ready and /metrics report, and conflicts replayed as whole units of work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiomysql
import pytest

from server.db import Database, Executor, NodeState, TransactionConflict, connect, parse_url
from server.db.mysql import MySQLDriver, why_unreachable
from server.errors import ServiceUnavailable
from tests.conftest import test_config as profile_config
from tests.mariadb_server import create_database
from tests.processes import free_port

REFUSED = "cannot connect (connection refused, or the host is unreachable)"


@pytest.mark.parametrize(("url", "hosts"), [
    ("mysql://u:p@db1:3306,db2:3307,db3/pet_api", (("db1", 3306), ("db2", 3307), ("db3", 3306))),
    ("mysql://u:p@db1,[::1]:3308/pet_api", (("db1", 3306), ("::1", 3308))),
    ("mysql://u:p@db1:3306/pet_api", (("db1", 3306),)),
])
def test_a_url_lists_its_hosts_in_order_and_the_first_is_the_host(url, hosts):
    parsed = parse_url(url)
    assert (parsed.user, parsed.password, parsed.database, parsed.hosts) == ("u", "p", "pet_api", hosts)
    assert (parsed.host, parsed.port) == hosts[0]
    assert parsed.at(*hosts[-1]).hosts == (hosts[-1],)


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u@db1:3306,db1:3306/d", "listed twice"),
    ("mysql://u@db1:x/d", "bad port"),
    ("mysql://u@db1:70000/d", "bad port"),
    ("mysql://u@db1,:3306/d", "empty host"),
])
def test_a_malformed_host_list_is_refused_naming_the_problem(url, message):
    with pytest.raises(ValueError, match=message):
        parse_url(url)


@pytest.fixture
def live(mysql_server_url: str) -> str:
    """host:port of the session's MariaDB, with an empty database pet_api_nodes."""
    create_database(mysql_server_url, "pet_api_nodes")
    return mysql_server_url.split("@", 1)[1]


async def _open(hosts: str, **overrides) -> Database:
    return await connect(profile_config(database_url=f"mysql://root@{hosts}/pet_api_nodes", **overrides))


class Relay:
    """A port of its own in front of the live server, as another node: it can be cut (new connections refused and
    open ones closed, as a killed server) and opened again on the same port; a silent one accepts and never answers
    (a hung host, a SIGSTOPped server)."""

    def __init__(self, target: str, *, silent: bool = False) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.silent = silent
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def open(self) -> Relay:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in self._links:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._links.clear()
        self._tasks.clear()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._links.add(writer)
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        if self.silent:
            await reader.read()  # until the client gives up
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._links.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


async def _writer_becomes(db: Database, name: str, seconds: float) -> float:
    """Seconds until the worker writes through the node ``name``, a statement sent meanwhile (a 503 on the way
    makes the node suspect, as a request's does)."""
    start = time.monotonic()
    while not any(node.writer and node.node == name for node in db.node_states()):
        assert time.monotonic() - start < seconds, db.node_states()
        with contextlib.suppress(ServiceUnavailable):
            await db.fetch_one("SELECT 1")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.gen_test(timeout=20)
async def test_a_dead_first_host_at_start_leaves_the_writes_to_the_second(live, caplog):
    dead = f"127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="pet_api.db"):
        db = await _open(f"{dead},{live}")
    try:
        assert await db.fetch_one("SELECT 1") == (1,)
        assert f"database node {dead} is down ({REFUSED})" in [r.getMessage() for r in caplog.records]
        assert db.node_states() == [NodeState(dead, "down", REFUSED, writer=False),
                                    NodeState(live, "ready", "plain server", writer=True)]
        assert isinstance(db.driver, MySQLDriver)
        assert await db.fetch_one("SELECT @@session.wsrep_sync_wait") == (0,)  # a plain server: no causal wait
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_silent_host_listed_after_a_ready_one_does_not_hold_up_the_start(live):
    silent = await Relay(live, silent=True).open()
    start = time.monotonic()
    db = await _open(f"{live},{silent.name}", db_connect_timeout=2.0)
    try:
        assert time.monotonic() - start < 1  # not the silent host's 2 s
        assert db.node_states() == [NodeState(live, "ready", "plain server", writer=True),
                                    NodeState(silent.name, "down", "not checked yet", writer=False)]
    finally:
        await db.close()
        await silent.cut()


@pytest.mark.gen_test(timeout=30)
async def test_a_silent_host_does_not_hold_up_the_failover_off_a_writer_that_died(live):
    first, silent = await Relay(live).open(), await Relay(live, silent=True).open()
    db = await _open(f"{first.name},{live},{silent.name}", db_connect_timeout=2.0)
    try:
        await asyncio.sleep(1.5)  # into the silent host's second check, which ends after the kill
        assert await db.fetch_one("SELECT 1") == (1,)
        await first.cut()
        assert await _writer_becomes(db, live, 5) < 1  # not after the silent host's 2 s timeout (or two of them)
        assert [n.state for n in db.node_states()] == ["down", "ready", "down"]
    finally:
        await db.close()
        await silent.cut()


@pytest.mark.gen_test(timeout=20)
async def test_no_ready_host_at_start_is_a_503_within_the_connect_timeout():
    start = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        await _open(f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    assert time.monotonic() - start < 3
    assert (caught.value.code, caught.value.headers) == (1008, {"Retry-After": "5"})
    assert why_unreachable(caught.value) == REFUSED  # what the start and migrate print, as for one host


@pytest.mark.parametrize(("user", "database", "line"), [
    ("nobody:wrong", "pet_api_nodes", "access denied (wrong user or password, no GRANT for this host, or the server"
                                      " requires TLS: ?ssl=verify)"),
    ("root", "nosuchdb", "no usable database (Unknown database 'nosuchdb')"),
])
@pytest.mark.gen_test(timeout=20)
async def test_no_usable_host_at_start_says_why_as_one_host_does_even_behind_a_dead_one(live, user, database, line):
    port = live.rsplit(":", 1)[1]
    hosts = f"127.0.0.1:{free_port()},{live},localhost:{port}"  # the refusal tells more than the dead first host
    with pytest.raises(ServiceUnavailable) as caught:
        await connect(profile_config(database_url=f"mysql://{user}@{hosts}/{database}"))
    assert (caught.value.code, caught.value.headers) == (1008, {"Retry-After": "5"})
    assert why_unreachable(caught.value) == line


@pytest.mark.gen_test(timeout=20)
async def test_one_host_reports_no_nodes_and_runs_no_checks(live):
    db = await _open(live)
    try:
        assert db.node_states() == []
        assert isinstance(db.driver, MySQLDriver) and db.driver.nodes is None
        assert db.driver.batches  # a plain server: a transaction's batch goes as one query
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=20)
async def test_reads_from_any_node_go_to_every_ready_one_in_turn(live, mysql_server_url):
    # The same server under a second name (localhost): two ready "nodes".
    port = live.rsplit(":", 1)[1]
    db = await _open(f"{live},localhost:{port}", db_read_from="any", db_pool_max=2)
    try:
        assert [(n.state, n.writer) for n in db.node_states()] == [("ready", True), ("ready", False)]
        for _ in range(4):
            assert await db.fetch_one("SELECT 1") == (1,)
        assert db.pool_stats() == (0, 2)  # one idle connection in each node's pool
    finally:
        await db.close()


async def _deadlock(db: Database) -> tuple[list[str], list[str]]:
    """Two transactions lock rows 1 and 2 in opposite orders; InnoDB rolls one back with 1213."""
    both_hold_one = asyncio.Barrier(2)
    runs: list[str] = []

    def body(name: str, first: int, second: int):
        async def run(tx: Executor) -> str:
            runs.append(name)
            await tx.execute("UPDATE c SET n = n + 1 WHERE id = %s", (first,))
            if runs.count(name) == 1:  # only the first attempts meet; a replay runs alone
                await asyncio.wait_for(both_hold_one.wait(), 5)
            await tx.execute("UPDATE c SET n = n + 1 WHERE id = %s", (second,))
            return name
        return run

    done = await asyncio.gather(db.run_transaction(body("a", 1, 2)), db.run_transaction(body("b", 2, 1)))
    return list(done), runs


@pytest.mark.gen_test(timeout=30)
async def test_a_deadlocked_transaction_is_replayed_whole_on_a_healthy_connection(live):
    db = await _open(live, db_pool_max=2)
    try:
        await db.execute("CREATE TABLE c (id INT PRIMARY KEY, n INT NOT NULL)")
        await db.execute("INSERT INTO c VALUES (1, 0), (2, 0)")
        done, runs = await _deadlock(db)
        assert done == ["a", "b"]
        assert sorted(runs) in (["a", "a", "b"], ["a", "b", "b"])  # the victim ran twice, the other once
        assert await db.fetch_all("SELECT id, n FROM c ORDER BY id") == [(1, 2), (2, 2)]  # each update once
        assert db.pool_stats() == (0, 2)  # no connection was dropped for the conflict
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_conflict_that_keeps_coming_back_is_a_503_after_the_bounded_attempts(live):
    db = await _open(live)
    attempts = 0

    async def always_conflicts(tx: Executor) -> None:
        nonlocal attempts
        attempts += 1
        await tx.execute("SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'deadlock'")

    try:
        with pytest.raises(TransactionConflict) as caught:
            await db.run_transaction(always_conflicts)
        assert attempts == 10
        assert (caught.value.status, caught.value.code, caught.value.headers) == (503, 1008, {"Retry-After": "5"})
        assert db.pool_stats() == (0, 1)
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_autocommit_statement_hit_by_a_lock_wait_timeout_runs_again_on_the_same_connection(live):
    db = await _open(live, db_pool_max=1)
    host, port = live.rsplit(":", 1)
    holder = await aiomysql.connect(host=host, port=int(port), user="root", db="pet_api_nodes", autocommit=False)
    try:
        await db.execute("CREATE TABLE c (id INT PRIMARY KEY, n INT NOT NULL)")
        await db.execute("INSERT INTO c VALUES (1, 0)")
        await db.execute("SET SESSION innodb_lock_wait_timeout = 1")  # the pool's one connection
        async with holder.cursor() as cur:
            await cur.execute("UPDATE c SET n = n + 10 WHERE id = 1")
        blocked = asyncio.ensure_future(db.execute("UPDATE c SET n = n + 1 WHERE id = 1"))
        await asyncio.sleep(1.5)  # the first attempt met 1205 after 1 s; the second waits
        assert not blocked.done()
        await holder.commit()
        assert (await blocked).rowcount == 1
        assert await db.fetch_one("SELECT n FROM c WHERE id = 1") == (11,)
        assert await db.fetch_one("SELECT @@session.innodb_lock_wait_timeout") == (1,)  # the same connection
    finally:
        holder.close()
        await db.close()


async def _port_answering(db: Database, port: int, seconds: float) -> tuple[float, int]:
    """Poll until the writer is the server on port: (seconds it took, 503s met on the way)."""
    start = time.monotonic()
    unavailable = 0
    while time.monotonic() - start < seconds:
        try:
            if await db.fetch_one("SELECT @@port") == (port,):
                return time.monotonic() - start, unavailable
        except ServiceUnavailable as exc:
            assert (exc.code, exc.headers) == (1008, {"Retry-After": "5"})
            unavailable += 1
        await asyncio.sleep(0.05)
    raise AssertionError(f"port {port} not answering after {seconds} s")


@pytest.mark.gen_test(timeout=90)
async def test_a_stopped_writer_fails_over_and_the_first_node_takes_the_writes_back_after_the_hold_down(
        live, private_mariadb):
    create_database(private_mariadb.url, "pet_api_nodes")
    first = private_mariadb.url.split("@", 1)[1]
    first_port, live_port = int(first.rsplit(":", 1)[1]), int(live.rsplit(":", 1)[1])
    db = await _open(f"{first},{live}", db_failback_after=1.0, db_health_interval=0.2)
    try:
        assert await db.fetch_one("SELECT @@port") == (first_port,)
        await asyncio.to_thread(private_mariadb.stop)
        took, unavailable = await _port_answering(db, live_port, 10)
        assert took < 2 and unavailable <= 2
        assert [(n.state, n.writer) for n in db.node_states()] == [("down", False), ("ready", True)]
        assert db.pool_stats() == (0, 1)  # the stopped node's pool is gone

        await asyncio.to_thread(private_mariadb.start)
        back = time.monotonic()
        took, unavailable = await _port_answering(db, first_port, 10)
        # After the 1 s hold-down (counted from the check that saw it ready, which may precede start()'s return
        # by an interval), and no request failed.
        assert 0.8 <= time.monotonic() - back < 4 and unavailable == 0
        assert [(n.state, n.writer) for n in db.node_states()] == [("ready", True), ("ready", False)]
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=30)
async def test_writes_go_back_to_the_first_steadily_ready_node_and_a_new_worker_elects_the_same(live):
    first, second = await Relay(live).open(), await Relay(live).open()
    hosts = f"{first.name},{second.name},{live}"
    db = await _open(hosts, db_failback_after=0.5, db_health_interval=0.1)
    later = None
    try:
        await first.cut()
        await second.cut()
        await _writer_becomes(db, live, 5)
        await second.open()  # the same port: back, while the first stays down
        took = await _writer_becomes(db, second.name, 5)  # not only the first node takes the writes back
        assert took >= 0.4
        later = await _open(hosts, db_failback_after=0.5)  # a worker started now, as one that replaces a crash
        assert [(n.state, n.writer) for n in later.node_states()] == [("down", False), ("ready", True),
                                                                      ("ready", False)]
        await first.open()
        await _writer_becomes(db, first.name, 5)
        await _writer_becomes(later, first.name, 5)
    finally:
        await db.close()
        if later is not None:
            await later.close()
        await first.cut()
        await second.cut()
