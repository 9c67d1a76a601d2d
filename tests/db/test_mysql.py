"""The aiomysql pool: parameterized statements, transactions, and bounded failures (503, never a hang)."""

import asyncio
import datetime as dt
import time

import pytest
from tornado.testing import bind_unused_port

from server.db import Database, IntegrityViolation, connect, parse_url
from server.db.mysql import MySQLDriver
from server.errors import ServiceUnavailable
from tests.conftest import test_config as profile_config
from tests.mariadb_server import create_database
from tests.processes import free_port


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql://u:p%40ss@db.example:3307/pets", ("mysql", "u", "p@ss", "db.example", 3307, "pets", "")),
    ("mysql://root@127.0.0.1/pets", ("mysql", "root", "", "127.0.0.1", 3306, "pets", "")),
    ("mariadb://u:p@h/d", ("mysql", "u", "p", "h", 3306, "d", "")),
    ("mysql+aiomysql://u:p@h:1/d", ("mysql", "u", "p", "h", 1, "d", "")),
    ("sqlite:///var/dev.sqlite3", ("sqlite", "", "", "", 0, "", "var/dev.sqlite3")),
    ("sqlite:////tmp/abs.sqlite3", ("sqlite", "", "", "", 0, "", "/tmp/abs.sqlite3")),
    ("sqlite://", ("sqlite", "", "", "", 0, "", ":memory:")),
])
def test_parse_url(url, expected):
    parsed = parse_url(url)
    assert (parsed.scheme, parsed.user, parsed.password, parsed.host, parsed.port, parsed.database,
            parsed.path) == expected


def test_an_unsupported_scheme_is_refused():
    with pytest.raises(ValueError, match="postgres"):
        parse_url("postgres://u@h/d")


@pytest.fixture
def scratch_url(mysql_server_url):
    url = create_database(mysql_server_url, "pet_api_scratch")
    return url


async def _open(url, **overrides) -> Database:
    db = await connect(profile_config(database_url=url, **overrides))
    assert isinstance(db.driver, MySQLDriver)
    await db.execute("CREATE TABLE IF NOT EXISTS t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) UNIQUE,"
                     " at DATETIME(6) NULL)")
    return db


@pytest.mark.gen_test(timeout=20)
async def test_statements_are_parameterized_and_utc(scratch_url):
    db = await _open(scratch_url)
    try:
        hostile = "x'); DROP TABLE t; --"
        result = await db.execute("INSERT INTO t (v, at) VALUES (%s, %s)", (hostile, dt.datetime(2024, 2, 29, 12)))
        assert result.rowcount == 1 and result.lastrowid
        assert await db.fetch_one("SELECT v, at FROM t WHERE id = %s", (result.lastrowid,)) == (
            hostile, dt.datetime(2024, 2, 29, 12))
        assert await db.fetch_all("SELECT v FROM t WHERE v = %s", ("nothing",)) == []
        assert await db.fetch_one("SELECT @@session.time_zone") == ("+00:00",)
        assert await db.fetch_one("SELECT 'Zoë 🐶'") == ("Zoë 🐶",)
        with pytest.raises(IntegrityViolation):
            await db.execute("INSERT INTO t (v) VALUES (%s)", (hostile,))
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_transaction_commits_or_rolls_back_as_a_whole(scratch_url):
    db = await _open(scratch_url)
    try:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t (v) VALUES (%s)", ("kept",))
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t (v) VALUES (%s)", ("dropped",))
                raise RuntimeError("abort")
        with pytest.raises(IntegrityViolation):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t (v) VALUES (%s)", ("also dropped",))
                await tx.execute("INSERT INTO t (v) VALUES (%s)", ("kept",))
        assert await db.fetch_all("SELECT v FROM t ORDER BY id") == [("kept",)]
        assert db.pool_stats()[0] == 0  # every connection went back
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_transaction_opened_inside_another_joins_it(scratch_url):
    db = await _open(scratch_url, db_pool_min=1, db_pool_max=1)  # a second connection would wait forever
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as outer:
                async with outer.transaction() as inner:
                    assert inner is outer
                    await inner.execute("INSERT INTO t (v) VALUES (%s)", ("inner",))
                raise RuntimeError("abort")  # the inner block's write goes with the outer one
        assert await db.fetch_all("SELECT v FROM t") == []
        assert db.pool_stats() == (0, 1)
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_slow_statement_is_cut_at_the_statement_timeout(scratch_url):
    db = await _open(scratch_url, db_statement_timeout=0.5)
    try:
        start = time.monotonic()
        with pytest.raises(ServiceUnavailable) as caught:
            await db.fetch_one("SELECT SLEEP(5)")
        assert time.monotonic() - start < 2
        assert caught.value.code == 1008
        assert caught.value.headers["Retry-After"]
        assert await db.fetch_one("SELECT 1") == (1,)  # the pool is fine afterwards
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=20)
async def test_waiting_for_a_free_connection_is_bounded(scratch_url):
    db = await _open(scratch_url, db_pool_min=1, db_pool_max=1, db_acquire_timeout=0.3)
    try:
        async with db.transaction():
            start = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                await db.fetch_one("SELECT 1")
            assert time.monotonic() - start < 1.5
        assert await db.fetch_one("SELECT 1") == (1,)
    finally:
        await db.close()


@pytest.mark.gen_test(timeout=20)
async def test_an_unreachable_server_is_503_fast():
    port = free_port()  # nothing listens: connection refused
    start = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        await connect(profile_config(database_url=f"mysql://root@127.0.0.1:{port}/x"))
    assert time.monotonic() - start < 3
    assert caught.value.code == 1008


@pytest.mark.gen_test(timeout=20)
async def test_a_server_that_accepts_but_never_answers_is_503_within_the_connect_timeout():
    sock, port = bind_unused_port()  # listening, never accepting: the handshake never comes
    try:
        start = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await connect(profile_config(database_url=f"mysql://root@127.0.0.1:{port}/x", db_connect_timeout=0.5))
        assert time.monotonic() - start < 3
    finally:
        sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("private_mariadb", [["--wait-timeout=1"]], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_connections_the_server_closed_while_idle_are_not_an_error(private_mariadb):
    db = await _open(create_database(private_mariadb.url, "pet_api_idle"), db_pool_min=2)
    try:
        await asyncio.gather(db.fetch_one("SELECT SLEEP(0.1)"), db.fetch_one("SELECT SLEEP(0.1)"))
        await asyncio.sleep(2.5)  # the server drops both idle connections (wait_timeout=1)
        results = await asyncio.gather(*(db.fetch_one("SELECT 1") for _ in range(3)))
        assert results == [(1,)] * 3
    finally:
        await db.close()
