"""The nodes of a multi-host database URL (a Galera cluster): which are ready, which one this worker writes
to, and a background task that keeps both current. A node is ready while it answers and, when it runs
Galera (wsrep_on), reports wsrep_ready=ON and wsrep_local_state_comment=Synced; a plain server is ready
while it answers. The writer is the first ready node in listed order: when it fails, the next ready one
takes over at once; a node listed before the writer takes the writes back once it has been ready for
db_failback_after seconds (so that every worker converges on the first steadily ready node, without flapping on
a node that comes and goes)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiomysql
import pymysql.err

from server import periodic
from server.db.pool import Pool
from server.db.url import DatabaseURL

if TYPE_CHECKING:
    from server.config import Config

log = logging.getLogger("pet_api.db")

# One round trip; a Galera node answers it even when it is not ready (status reads are not replicated).
STATE_SQL = ("SELECT @@wsrep_on,"
             " (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY'),"
             " (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
             "  WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT')")
PLAIN_SQL = "SELECT 1"  # a server without wsrep variables (MySQL): ready while it answers
UNKNOWN_VARIABLE = 1193
READY, NOT_READY, DOWN = "ready", "not_ready", "down"


@dataclass(eq=False)
class Node:
    """One host of the URL, its last known state and, while it is used, its pool."""

    url: DatabaseURL
    state: str = DOWN
    detail: str = "not checked yet"  # Galera's state comment (Synced, Donor/Desynced...) or why it is down
    galera: bool = False
    refused: bool = False  # down because the server answered with an error (access denied, unknown database)
    checked: bool = False  # a check has ended (before that, state says down and nothing is known)
    ready_since: float | None = None
    pool: Pool | None = None
    checker: aiomysql.Connection | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.url.host}:{self.url.port}"

    @property
    def ready(self) -> bool:
        return self.state == READY


Connect = Callable[[DatabaseURL, bool], Awaitable[aiomysql.Connection]]  # (node URL, galera) -> connection
Describe = Callable[[BaseException], str]  # why a connect or status query failed, as a start failure says it


class Nodes:
    """Every node of the URL, checked at start and every db_health_interval seconds (at once after a failure), each
    check on its own: the writer is elected again as each one ends."""

    def __init__(self, url: DatabaseURL, config: Config, connect: Connect, describe: Describe) -> None:
        self.config = config
        self.nodes = [Node(url.at(host, port)) for host, port in url.hosts]
        self.writer: Node | None = None
        self._connect = connect
        self._describe = describe
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checking: dict[Node, asyncio.Task[None]] = {}  # the check running on each node
        self._decided = asyncio.Event()  # the first election was held
        self._closing: set[asyncio.Task[None]] = set()
        self._reader = 0
        self.on_change: Callable[[Node | None], None] = lambda node: None
        self.on_failed: Callable[[Pool], None] = lambda pool: None  # abort the statements still running there

    async def start(self) -> None:
        """Check every node and elect the writer as soon as each node listed up to the first ready one has
        answered (a silent node listed after it does not hold the start up); keep checking in the background."""
        self._round()
        self._task = asyncio.ensure_future(self._watch())
        await self._decided.wait()

    def suspect(self) -> None:
        """A statement or connect failed as if its node were unusable: check every node now (a node that
        answers the check keeps its place, so one lost connection does not move the writes)."""
        self._wake.set()

    def reader(self) -> Node | None:
        """A ready node to read from (db_read_from: any), in turn."""
        ready = [node for node in self.nodes if node.ready and node.pool is not None]
        if not ready:
            return self.writer
        self._reader = (self._reader + 1) % len(ready)
        return ready[self._reader]

    def _round(self) -> None:
        """Check every node whose last check has ended: one status query per node at a time, so a node that does
        not answer delays only its own next check, never another node's nor the election."""
        for node in self.nodes:
            if node not in self._checking:
                self._checking[node] = task = asyncio.ensure_future(self._check_and_elect(node))
                task.add_done_callback(functools.partial(self._checked, node))

    def _checked(self, node: Node, _: asyncio.Task[None]) -> None:
        del self._checking[node]

    async def _check_and_elect(self, node: Node) -> None:
        """Check one node, then elect from what is known now: a failover waits for no other node's check."""
        try:
            await self.check(node)
        except Exception as exc:  # the checks must outlive any surprise: the node counts as down until its next one
            log.exception("database node check failed")
            self._set(node, DOWN, exc.__class__.__name__, node.galera)
        if self._decided.is_set() or self._settled():
            self.elect()
            self._decided.set()

    def _settled(self) -> bool:
        """Whether the first election can be held: every node up to the first ready one has answered its check."""
        for node in self.nodes:
            if not node.checked:
                return False
            if node.ready:
                return True
        return True

    async def check(self, node: Node) -> None:
        """One status query on the node's own checking connection, bounded by db_connect_timeout."""
        try:
            async with asyncio.timeout(self.config.db_connect_timeout):
                if node.checker is None or node.checker.closed:
                    node.checker = await self._connect(node.url, False)
                galera, ready, comment = await self._state(node.checker)
        except (pymysql.err.MySQLError, OSError, TimeoutError) as exc:
            code = exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None
            node.refused = isinstance(code, int) and 1000 <= code < 2000
            self._set(node, DOWN, self._describe(exc), node.galera)
            if node.checker is not None:
                node.checker.close()
                node.checker = None
            return
        state = READY if not galera or (ready == "ON" and comment == "Synced") else NOT_READY
        node.refused = False
        self._set(node, state, comment if galera else "plain server", galera)

    async def _state(self, conn: aiomysql.Connection) -> tuple[bool, str, str]:
        cur = await conn.cursor()
        try:
            try:
                await cur.execute(STATE_SQL)
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] == UNKNOWN_VARIABLE:
                    await cur.execute(PLAIN_SQL)
                    return False, "", ""
                raise
            row = await cur.fetchone()
        finally:
            await cur.close()
        if row is None:
            raise pymysql.err.OperationalError(0, "no state row")
        return bool(int(row[0] or 0)), str(row[1] or ""), str(row[2] or "")

    def _set(self, node: Node, state: str, detail: str, galera: bool) -> None:
        if not node.checked or (state, detail) != (node.state, node.detail):  # a node down from the start too
            log.warning("database node %s is %s (%s)", node.name, state, detail)
        node.galera = galera
        node.checked = True
        node.detail = detail
        if state == READY and node.ready_since is None:
            node.ready_since = asyncio.get_running_loop().time()
        elif state != READY:
            node.ready_since = None
        node.state = state

    def why_none_ready(self) -> str:
        """Why no node can take the writes, in the words of a single server's start failure: a node whose server
        refused (access denied, no usable database) before one that did not answer, the first listed of each."""
        down = [node for node in self.nodes if node.checked and node.state == DOWN]
        down.sort(key=lambda node: not node.refused)
        return down[0].detail if down else "no database node is ready"

    def elect(self) -> None:
        """Keep the writer while it is ready, unless a node listed before it has been ready for db_failback_after
        seconds: the first such one takes the writes back. With no ready writer, the first ready node. So every
        worker listing the nodes in one order ends on the first steadily ready one, whatever it saw before. Pools
        of nodes no longer used are dropped."""
        now = asyncio.get_running_loop().time()
        writer = self.writer
        if writer is None or not writer.ready:
            writer = next((node for node in self.nodes if node.ready), None)
        else:
            writer = next(node for node in self.nodes if node is writer or self._steady(node, now))
        if writer is not self.writer:
            log.warning("database writer: %s (was %s)", writer.name if writer else "none",
                        self.writer.name if self.writer else "none")
        for node in self.nodes:
            keep = node is writer or (self.config.db_read_from == "any" and node.ready)
            if keep and node.pool is None:
                node.pool = self._new_pool(node)
            elif not keep and node.pool is not None:
                self._drop(node)
        if writer is not self.writer:
            self.writer = writer
            self.on_change(writer)

    def _steady(self, node: Node, now: float) -> bool:
        """Ready for db_failback_after seconds: steady enough to take the writes back."""
        return node.ready_since is not None and now - node.ready_since >= self.config.db_failback_after

    def _new_pool(self, node: Node) -> Pool:
        config = self.config
        return Pool(lambda: self._connect(node.url, node.galera), minsize=config.db_pool_min,
                    maxsize=config.db_pool_max, recycle=config.db_pool_recycle)

    def _drop(self, node: Node) -> None:
        """Close the node's idle connections now and the busy ones as they come back; on a node that failed,
        the busy ones at once too (their statements would otherwise wait out db_statement_timeout on a frozen
        node). A node given up while ready (the first one took the writes back) lets them finish."""
        pool, node.pool = node.pool, None
        if pool is not None:
            task = asyncio.ensure_future(pool.close())
            if not node.ready:
                self.on_failed(pool)
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.db_health_interval):
                    await self._wake.wait()
            self._wake.clear()
            self._round()

    async def close(self) -> None:
        """Stop checking; close every pool and checking connection."""
        await periodic.stop(self._task)
        for task in list(self._checking.values()):
            await periodic.stop(task)
        for node in self.nodes:
            if node.checker is not None:
                node.checker.close()
                node.checker = None
            self._drop(node)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
