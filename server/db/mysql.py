"""MariaDB through aiomysql: bounded connects and statements, failures mapped to ServiceUnavailable (a
database that is gone becomes a 503, never a hang), connections in the FIFO pool."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, TypeVar

import aiomysql
import pymysql.err
from pymysql.constants import CLIENT

from server.db import NodeState, TransactionConflict
from server.db.dialect import MYSQL
from server.db.nodes import Node, Nodes
from server.db.pool import Pool
from server.db.runner import Batch, Fetch, Statements, one_row
from server.db.url import DatabaseURL
from server.errors import ServiceUnavailable

if TYPE_CHECKING:
    from server.config import Config

log = logging.getLogger("pet_api.db")
T = TypeVar("T")

# A connect that failed, whatever the reason (refused, timed out, access denied, no such database): the database
# cannot be used now. A statement's failure is read by unavailable() instead.
UNAVAILABLE = (pymysql.err.OperationalError, pymysql.err.InterfaceError, TimeoutError, OSError,
               ConnectionError)
# Server errors that mean "not now" (the server's or the node's state), not "this statement is wrong": too many
# connections (1040, 1203, 1226), out of memory (1041), shutdown in progress (1053), a Galera node not ready (1047
# "WSREP has not yet prepared node for application use") or cut from the primary component at COMMIT (1180 "...
# provider status: Not connected to Primary Component"), the connection aborted or killed (1152, 1158-1161,
# 1184, 1927), a statement interrupted or over max_statement_time (1317, 1969, 3024), a read-only server (1290,
# 1836), disconnected for inactivity (4031).
SERVER_NOT_NOW = frozenset({1040, 1041, 1047, 1053, 1152, 1158, 1159, 1160, 1161, 1180, 1184, 1203, 1226, 1290, 1317,
                            1836, 1927, 1969, 3024, 4031})
GONE_BEFORE_SENT = {2006}  # "server has gone away": the statement never reached the server
# Deadlock or Galera certification failure (1213, often at COMMIT) and lock wait timeout (1205): the server
# rolled the transaction back and the connection is fine; the runner replays the whole unit of work.
CONFLICTS = {1213, 1205}
TIME_ZONE = "SET time_zone = '+00:00'"
# On a Galera node a read first waits until the node applied every write the cluster committed before it
# (causal reads across nodes and instances); README "Scale-out" states the cost.
GALERA_INIT = TIME_ZONE + ", wsrep_sync_wait = 1"


async def open_connection(url: DatabaseURL, config: Config, *, galera: bool = False,
                          tls: ssl.SSLContext | None = None) -> aiomysql.Connection:
    """A new connection (TCP, greeting, login, init command) within db_connect_timeout, bounded by
    asyncio.wait rather than by cancelling aiomysql: its asyncio.wait_for (Python 3.11) can swallow a
    cancellation that lands as the TCP connect completes (a SYN retransmitted at 1 s meets a 1 s timeout),
    and the greeting is then awaited with no deadline: a frozen server held requests for seconds."""
    task = asyncio.ensure_future(aiomysql.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, db=url.database, charset="utf8mb4",
        autocommit=True, connect_timeout=config.db_connect_timeout, init_command=GALERA_INIT if galera else TIME_ZONE,
        ssl=tls, client_flag=CLIENT.MULTI_STATEMENTS))  # a transaction's batches (Statements): docs/security.md
    try:
        done, _ = await asyncio.wait({task}, timeout=config.db_connect_timeout)
    except BaseException:  # the acquire timed out or the request went away
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise TimeoutError("no database connection within db_connect_timeout")
    conn = task.result()
    if tls is not None and not conn.server_capabilities & CLIENT.SSL:
        # aiomysql goes on in plain text when the server does not offer TLS: refuse rather than downgrade.
        conn.close()
        raise ConnectionError("TLS: the database server does not offer TLS (the URL asks for ssl)")
    return conn


def unavailable(exc: BaseException) -> bool:
    """Whether a statement failed because of the link or the server's state (a 503, the node suspected), not
    because of the statement: timeouts, OS and socket errors, pymysql's client errors (2000-2999: 2002, 2003,
    2006, 2013, 2055...) and protocol errors (no error number, or one below 1000), and SERVER_NOT_NOW. Any other
    server error (a missing privilege 1142, an unknown column 1054, a duplicate column 1060...) is the statement's:
    it is raised as is (500 on a request; `migrate` names the migration)."""
    if isinstance(exc, TimeoutError | OSError | ConnectionError | pymysql.err.InterfaceError):
        return True
    if not isinstance(exc, pymysql.err.OperationalError | pymysql.err.InternalError):
        return False
    code = exc.args[0] if exc.args else None
    if not isinstance(code, int):  # "Packet sequence number wrong", an authentication exchange gone wrong
        return True
    return code < 1000 or 2000 <= code < 3000 or code in SERVER_NOT_NOW


def _abandon(task: asyncio.Future[aiomysql.Connection]) -> None:
    """Stop waiting for a connection being opened; if it opens all the same, close it."""
    task.cancel()

    def close(done: asyncio.Future[aiomysql.Connection]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().close()

    task.add_done_callback(close)


class MySQLDriver:
    """The pool; every statement bounded by db_statement_timeout, every wait for a connection by
    db_acquire_timeout. With several hosts in the URL, the pool of the writer node (server/db/nodes.py)."""

    dialect = MYSQL
    integrity_error = pymysql.err.IntegrityError

    def __init__(self, url: DatabaseURL, config: Config, tls: ssl.SSLContext | None = None) -> None:
        self.url = url
        self.config = config
        self.tls = tls
        self.statement_timeout: float | None = config.db_statement_timeout
        self.retry_after = {"Retry-After": str(config.retry_after)}
        self.pool = Pool(self._connect, minsize=config.db_pool_min, maxsize=config.db_pool_max,
                         recycle=config.db_pool_recycle)
        self.nodes: Nodes | None = None  # one host: no node checks at all, the path of a single server
        # A batch goes out as one multi-statement query, except to Galera: there a transaction aborted by a
        # replicated write (brute-force abort) between two statements of one query can lose its 1213 and the
        # statements after it, COMMIT included, answer OK (4 of 7 runs of the cluster's concurrent PATCH test
        # answered two PATCHes with one version): each statement goes alone there, as before batches.
        self.batches = len(url.hosts) == 1
        self.read_any = False
        self._lent: dict[aiomysql.Connection, Pool] = {}  # with several nodes: the pool a connection returns to
        if len(url.hosts) > 1:
            self.nodes = Nodes(url, config, self._connect_node, why_connect_failed)
            self.nodes.on_change = self._writer_changed
            self.nodes.on_failed = self._abort
            self.read_any = config.db_read_from == "any"
            self.pool = self._no_writer()

    async def _connect(self) -> aiomysql.Connection:
        return await open_connection(self.url, self.config, tls=self.tls)

    async def _connect_node(self, url: DatabaseURL, galera: bool) -> aiomysql.Connection:
        return await open_connection(url, self.config, galera=galera, tls=self.tls)

    def _no_writer(self) -> Pool:
        pool = Pool(self._connect, minsize=0, maxsize=1, recycle=-1)
        pool.closing = True  # no node is ready: every acquire answers 503 at once
        return pool

    def _writer_changed(self, writer: Node | None) -> None:
        self.pool = writer.pool if writer is not None and writer.pool is not None else self._no_writer()

    def _abort(self, pool: Pool) -> None:
        """Close the connections lent from a failed node's pool: their statements fail now (503), not at the
        statement timeout."""
        for conn, lender in list(self._lent.items()):
            if lender is pool:
                conn.close()

    async def fill(self) -> None:
        """Open the first connections (with several hosts: check them and pick the writer), or ServiceUnavailable."""
        try:
            async with asyncio.timeout(self.config.db_connect_timeout + 1):
                if self.nodes is not None:
                    await self.nodes.start()
                    if self.nodes.writer is None:
                        raise ConnectionError(self.nodes.why_none_ready())
                await self.pool.fill()
                if self.nodes is None:
                    self.batches = not await self._galera()
        except UNAVAILABLE as exc:
            await self.close()
            raise ServiceUnavailable(headers=dict(self.retry_after)) from exc

    async def _galera(self) -> bool:
        """Whether the one server is a Galera node (a single-host URL may name one, or a proxy in front of some)."""
        conn = await self.acquire()
        try:
            row = await self.run(conn, (("SHOW VARIABLES LIKE 'wsrep_on'", ()),), one_row)
        finally:
            self.release(conn)
        return row is not None and str(row[1]).upper() == "ON"

    async def acquire(self, read: bool = False) -> aiomysql.Connection:
        pool = self.pool
        if read and self.read_any and self.nodes is not None:
            node = self.nodes.reader()
            pool = node.pool if node is not None and node.pool is not None else pool
        conn = pool.take_free()  # the common case: no wait, so no timer either
        if conn is None:
            conn = await self._wait(pool)
        if self.nodes is not None:
            self._lent[conn] = pool
        return conn

    async def _wait(self, pool: Pool) -> aiomysql.Connection:
        try:
            async with asyncio.timeout(self.config.db_acquire_timeout):
                return await pool.acquire()
        except UNAVAILABLE as exc:
            if self.nodes is not None:
                self.nodes.suspect()
            raise self._unavailable(exc) from exc
        except ServiceUnavailable as exc:  # no node is ready, or the writer changed while this one waited
            raise self._unavailable(exc) from exc

    def release(self, conn: aiomysql.Connection) -> None:
        if self.nodes is None:
            self.pool.release(conn)
        else:
            self._lent.pop(conn, self.pool).release(conn)

    async def run(self, conn: aiomysql.Connection, batch: Batch, fetch: Fetch[T]) -> T:
        """The batch as one COM_QUERY (its parameters escaped here, as for one statement), each result read in turn:
        MariaDB stops at the first error, which nextset() raises with nothing of the batch left unread. To Galera
        (batches False), one statement after the other."""
        async with asyncio.timeout(self.statement_timeout):
            cur = await conn.cursor()
            try:
                if len(batch) == 1 or not self.batches:
                    for sql, params in batch:
                        await cur.execute(sql, params or None)
                else:
                    await cur.execute(";".join([cur.mogrify(sql, params or None) for sql, params in batch]))
                    for _ in range(len(batch) - 1):
                        await cur.nextset()
                return await fetch(cur)
            finally:
                await cur.close()

    def failure(self, conn: aiomysql.Connection, exc: BaseException) -> BaseException:
        """What a statement's exception becomes; a link that failed is closed, never pooled again (a
        conflict leaves a healthy connection: the server rolled the transaction back)."""
        if isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] in CONFLICTS:
            return TransactionConflict(headers=dict(self.retry_after))
        if unavailable(exc):
            conn.close()
            if self.nodes is not None:
                self.nodes.suspect()
            return self._unavailable(exc)
        if isinstance(exc, asyncio.CancelledError):
            conn.close()  # the client left mid-statement: the reply may still be in flight
        return exc

    def never_sent(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in GONE_BEFORE_SENT

    def open(self, conn: aiomysql.Connection) -> bool:
        return not conn.closed

    async def close(self) -> None:
        if self.nodes is not None:
            await self.nodes.close()  # the writer's pool is one of the nodes'
            return
        await self.pool.close()

    def pool_stats(self) -> tuple[int, int]:
        pools = [self.pool] if self.nodes is None else [n.pool for n in self.nodes.nodes if n.pool is not None]
        return sum(p.size - p.idle for p in pools), sum(p.idle for p in pools)

    def node_states(self) -> list[NodeState]:
        """Every node of a multi-host URL: its state and whether this worker writes to it ([] for one host)."""
        if self.nodes is None:
            return []
        writer = self.nodes.writer
        return [NodeState(n.name, n.state, n.detail, n is writer) for n in self.nodes.nodes]

    def _unavailable(self, exc: BaseException) -> ServiceUnavailable:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return ServiceUnavailable(headers=dict(self.retry_after))


async def open_mysql(url: DatabaseURL, config: Config) -> Statements[aiomysql.Connection]:
    """The database with its first connections open, or ServiceUnavailable."""
    try:
        tls = url.tls.context()
    except (OSError, ssl.SSLError) as exc:  # a missing or unreadable ssl_ca/ssl_cert/ssl_key file
        reason = f"TLS: cannot load the ssl_ca/ssl_cert/ssl_key files ({exc.strerror or exc.__class__.__name__})"
        raise ServiceUnavailable() from ConnectionError(reason)
    driver = MySQLDriver(url, config, tls)
    await driver.fill()
    return Statements(driver, echo=config.sql_echo)


def why_unreachable(exc: BaseException) -> str:
    """What an operator needs to hear when the first connect failed, without the password (MariaDB's own texts
    name the user and host, never the password)."""
    return why_connect_failed(exc.__cause__ or exc)


# The server refused the account: 1045 a wrong user or password; 1698 the same without the password's word (MariaDB
# answers it for an unknown user when it stands in another account's plugin, unix_socket on Debian, and for an
# account its client cannot authenticate as over TCP); 1130 no account for this client's host.
ACCESS_DENIED = frozenset({1045, 1698, 1130})


def why_connect_failed(cause: BaseException) -> str:
    """Why a connect (or a cluster node's status query) failed, from its own exception: what why_unreachable says."""
    if isinstance(cause.__cause__, ssl.SSLCertVerificationError):  # aiomysql wraps it in a 2003
        return f"TLS: the server certificate did not verify ({cause.__cause__.verify_message})"
    if isinstance(cause.__cause__, ssl.SSLError):
        return f"TLS: the handshake failed ({cause.__cause__.reason})"
    code = cause.args[0] if isinstance(cause, pymysql.err.MySQLError) and cause.args else None
    if code in ACCESS_DENIED:
        # MariaDB answers a plain connection refused by require_secure_transport with this same 1045
        return "access denied (wrong user or password, no GRANT for this host, or the server requires TLS: ?ssl=verify)"
    if code in (1044, 1049):
        return f"no usable database ({cause.args[1]})"
    if code in (2003, 2002, 2005, 2013) or isinstance(cause, ConnectionRefusedError):
        return "cannot connect (connection refused, or the host is unreachable)"
    if isinstance(cause, TimeoutError):
        return "no answer within db_connect_timeout"
    if isinstance(cause, ConnectionError) and cause.args:
        return str(cause.args[0])
    return cause.__class__.__name__
