"""The aiomysql pool: parameterized statements, transactions, and bounded failures (503, never a hang)."""

import asyncio
import datetime as dt
import time
from urllib.parse import urlsplit

import pymysql.err
import pytest
from tornado.testing import bind_unused_port

from server.db import Database, IntegrityViolation, connect, parse_url
from server.db.mysql import MySQLDriver, unavailable, why_unreachable
from server.errors import ServiceUnavailable
from tests.conftest import test_config as profile_config
from tests.factories import assert_error, trigger, user_with_token
from tests.mariadb_server import connect_server, create_database, data_only_account
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


ACCESS_DENIED = ("access denied (wrong user or password, no GRANT for this host, or the server requires TLS:"
                 " ?ssl=verify)")


@pytest.mark.gen_test(timeout=20)
async def test_an_account_the_server_refuses_is_access_denied_whichever_code_it_answers(scratch_url):
    # MariaDB refuses an account with 1045 or 1698: Debian's server answers 1698 for an unknown user (it stands in
    # the plugin of an existing account, its root's unix_socket), and any server for a unix_socket account over TCP.
    # 1698 read "OperationalError" at start and in migrate (audit config F3).
    parts = urlsplit(scratch_url)
    conn = connect_server(scratch_url)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'pet_api_socket'@'%'")
            cur.execute("CREATE USER 'pet_api_socket'@'%' IDENTIFIED VIA unix_socket")
        for user, code in [("pet_api_socket:pw", 1698), ("pet_api_nobody:pw", 1045)]:
            url = parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port}").geturl()
            with pytest.raises(ServiceUnavailable) as caught:
                await connect(profile_config(database_url=url))
            assert isinstance(caught.value.__cause__, pymysql.err.OperationalError)
            assert caught.value.__cause__.args[0] == code, caught.value.__cause__
            assert why_unreachable(caught.value) == ACCESS_DENIED
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'pet_api_socket'@'%'")
        conn.close()


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


OE = pymysql.err.OperationalError


@pytest.mark.parametrize("exc", [
    TimeoutError(), ConnectionResetError(), OSError(), pymysql.err.InterfaceError(0, ""),
    *(OE(code, "client") for code in (2002, 2003, 2006, 2013, 2055)),  # pymysql's client errors
    pymysql.err.InternalError("Packet sequence number wrong - got 3 expected 1"),  # the protocol, no errno
    pymysql.err.InternalError(126, "an errno below 1000"),
    *(OE(code, "not now") for code in (1040, 1047, 1053, 1180, 1290, 1927, 4031)),
], ids=repr)
def test_the_link_and_the_servers_state_are_unavailable(exc):
    assert unavailable(exc)


@pytest.mark.parametrize("exc", [
    *(OE(code, "the statement") for code in (1054, 1060, 1142, 1644, 1050)),  # pymysql maps these to OperationalError
    pymysql.err.ProgrammingError(1146, "Table 'x.users' doesn't exist"), pymysql.err.DataError(1406, "too long"),
    OE(1213, "deadlock"),  # a conflict: the runner replays it (TransactionConflict), never an outage
    ValueError(),
], ids=repr)
def test_a_statement_the_server_refuses_is_not_an_outage(exc):
    assert not unavailable(exc)


@pytest.mark.gen_test(timeout=20)
async def test_a_refused_statement_is_raised_as_is_and_its_connection_kept(scratch_url):
    db = await _open(scratch_url, db_pool_min=1, db_pool_max=1)
    with data_only_account(scratch_url) as restricted_url:
        data_only = await connect(profile_config(database_url=restricted_url, db_pool_min=1, db_pool_max=1))
        try:
            for run, sql, code in [(db, "ALTER TABLE t ADD COLUMN v INT", 1060), (db, "SELECT nope FROM t", 1054),
                                   (data_only, "CREATE TABLE u (id INT)", 1142)]:
                with pytest.raises(pymysql.err.OperationalError) as caught:  # not ServiceUnavailable
                    await run.execute(sql)
                assert caught.value.args[0] == code
                assert await run.fetch_one("SELECT 1") == (1,)
                assert run.pool_stats() == (0, 1)  # the one connection, back in the pool: the link was fine
            with pytest.raises(ServiceUnavailable):  # a Galera node that is not ready still is an outage
                await db.execute("SIGNAL SQLSTATE '08S01' SET MYSQL_ERRNO = 1047,"
                                 " MESSAGE_TEXT = 'WSREP has not yet prepared node for application use'")
        finally:
            await db.close()
            await data_only.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_request_whose_statement_is_refused_answers_500_and_logs_the_sql_error(app, api, caplog):
    user, token = await user_with_token(app)
    refuse = ("CREATE TRIGGER refuse_pets BEFORE INSERT ON pets FOR EACH ROW"
              " SIGNAL SQLSTATE '42000' SET MYSQL_ERRNO = 1142, MESSAGE_TEXT = 'INSERT command denied'")
    async with trigger(app, refuse):
        answer = await api.post("/v1/pets", json={"name": "Rex", "species": "dog"}, token=token)
    assert_error(answer, 500, 999, "POST /v1/pets", "server error")
    assert "Retry-After" not in answer.headers
    logged = [r for r in caplog.records if r.getMessage() == "uncaught exception"]
    assert logged and "(1142, 'INSERT command denied')" in str(logged[-1].exc_info[1]), caplog.text
    assert await app.db.fetch_one("SELECT COUNT(*) FROM pets WHERE owner_id = %s", (user.id,)) == (0,)
