"""A private MariaDB Galera cluster for the tests: real mariadbd nodes on loopback ports.

Each node is a ``PrivateMariaDB`` (tests/mariadb_server.py) running as the OS user ``mysql`` from its
own option file: the [galera] section of the shipped deploy/galera/galera.cnf, with the addresses,
ports and gcache size replaced, so the tests run what operators run. Node 1 is initialised and
bootstraps the cluster (--wsrep-new-cluster); the others start empty and receive their data by rsync
SST. Faults: ``kill`` (SIGKILL), ``freeze``/``thaw`` (SIGSTOP/SIGCONT), ``restart`` (rejoin by IST or
SST). Needs root (to run nodes as ``mysql``) and Debian's mariadb-server, galera-4 and rsync.
Nodes are numbered from 1.
"""

from __future__ import annotations

import configparser
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import pymysql
from port_for import get_port

from tests.mariadb_server import HOST, SERVER_ARGS, PrivateMariaDB, connect_server, create_database, find_tool

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = ROOT / "deploy" / "galera" / "galera.cnf"
RUN_AS = "mysql"
DATABASE = "pet_api_test"
STATUS_TIMEOUT = 2.0  # a frozen node must not hang a status query
SUMMARY_KEYS = ("wsrep_local_state_comment", "wsrep_ready", "wsrep_cluster_status", "wsrep_cluster_size",
                "wsrep_cluster_conf_id")
# Test-only provider options: the addresses are added per node; three 512M gcache files would cost
# 1.5 GB of /tmp and seconds of preallocation for a few kilobytes of test writes.
TEST_PROVIDER_OPTIONS = {"gcache.size": "32M"}


def _option_name(name: str) -> str:
    return name.strip().lstrip("-").replace("-", "_").lower()


def read_galera_options(path: Path = SHIPPED_CONFIG) -> dict[str, str | None]:
    """The [galera] section of a MariaDB option file, names normalised (dashes to underscores)."""
    parser = configparser.ConfigParser(
        allow_no_value=True, delimiters=("=",), comment_prefixes=("#", ";"), interpolation=None
    )
    parser.optionxform = _option_name  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return {name: None if value is None else value.strip().strip('"') for name, value in parser["galera"].items()}


def parse_provider_options(value: str | None) -> dict[str, str]:
    """Split wsrep_provider_options ("a=1; b=2") into a dict, keeping the order."""
    pairs = (item.split("=", 1) for item in (value or "").split(";") if item.strip())
    return {key.strip(): val.strip() for key, val in pairs}


def missing_prerequisites(options: dict[str, str | None]) -> list[str]:
    """What this machine lacks to run a Galera node (empty when it can)."""
    missing = []
    if find_tool("mariadbd") is None:
        missing.append("mariadbd (apt-get install mariadb-server)")
    provider = options.get("wsrep_provider") or ""
    if not Path(provider).is_file():
        missing.append(f"the Galera provider {provider} (apt-get install galera-4)")
    if shutil.which("rsync") is None:
        missing.append("rsync for SST (apt-get install rsync)")
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        missing.append(f"the OS user {RUN_AS} (created by mariadb-server)")
    if os.geteuid() != 0:
        missing.append(f"root, to run the nodes as {RUN_AS}")
    return missing


def _free_ports(count: int, taken: set[int]) -> list[int]:
    """count free ports, none of them in taken (which they are added to)."""
    ports: list[int] = []
    while len(ports) < count:
        port = get_port(None)
        assert port is not None
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports


def _synced(statuses: list[dict[str, str]]) -> bool:
    views = {(s["wsrep_cluster_conf_id"], s["wsrep_cluster_size"]) for s in statuses}
    return len(views) == 1 and all(
        s["wsrep_local_state_comment"] == "Synced"
        and s["wsrep_ready"] == "ON"
        and s["wsrep_cluster_status"] == "Primary"
        and s["wsrep_cluster_size"] == str(len(statuses))
        for s in statuses
    )


class GaleraNode:
    """One cluster member: its server, its Galera ports and whether it is frozen."""

    def __init__(self, index: int, base_dir: Path, taken_ports: set[int]) -> None:
        self.index = index
        self.options_file = base_dir / "node.cnf"
        self.server = PrivateMariaDB(base_dir, options_file=self.options_file, run_as=RUN_AS, install=index == 1)
        taken_ports.add(self.server.port)
        self.gcomm_port, self.ist_port, self.sst_port = _free_ports(3, taken_ports)
        self.frozen = False

    @property
    def up(self) -> bool:
        """Running and not frozen: the node should take part in the cluster."""
        return self.server.running() and not self.frozen

    def recover_position(self) -> list[str]:
        """Run the stopped server with --wsrep-recover: ["--wsrep-start-position=UUID:SEQNO"], or []."""
        log = self.server.log_path.with_name("recover.log")
        log.unlink(missing_ok=True)
        subprocess.run(
            self.server.command(["--wsrep-recover", f"--log-error={log}"]),
            check=True, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        found = re.search(r"WSREP: Recovered position: *(\S+)", log.read_text(errors="replace"))
        return [f"--wsrep-start-position={found[1]}"] if found else []

    def write_options(self, galera: dict[str, str | None], cluster_address: str) -> None:
        """Write this node's option file: the test's server settings, then the shipped [galera] ones."""
        provider = parse_provider_options(galera.get("wsrep_provider_options"))
        provider |= TEST_PROVIDER_OPTIONS | {
            "gmcast.listen_addr": f"tcp://{HOST}:{self.gcomm_port}",
            "ist.recv_addr": f"{HOST}:{self.ist_port}",
        }
        galera = galera | {
            "wsrep_cluster_address": cluster_address,
            "wsrep_node_address": f"{HOST}:{self.gcomm_port}",
            "wsrep_node_name": f"node{self.index}",
            "wsrep_node_incoming_address": f"{HOST}:{self.server.port}",
            "wsrep_sst_receive_address": f"{HOST}:{self.sst_port}",
            "wsrep_provider_options": '"' + "; ".join(f"{k}={v}" for k, v in provider.items()) + '"',
        }
        # The shipped file wins over the single-server test settings (innodb_flush_log_at_trx_commit).
        mysqld = [arg.lstrip("-") for arg in SERVER_ARGS if _option_name(arg.split("=")[0]) not in galera]
        lines = ["[mysqld]", *mysqld, "", "[galera]"]
        lines += [name if value is None else f"{name} = {value}" for name, value in galera.items()]
        self.options_file.write_text("\n".join(lines) + "\n")


class GaleraCluster:
    """A private Galera cluster of ``size`` nodes configured from ``config``'s [galera] section."""

    def __init__(self, *, config: Path = SHIPPED_CONFIG, size: int = 3) -> None:
        self.galera_options = read_galera_options(config)
        if missing := missing_prerequisites(self.galera_options):
            raise RuntimeError("cannot run a Galera cluster here, missing: " + "; ".join(missing))
        # Not under pytest's tmp_path: /tmp/pytest-of-root is private to root and the nodes run as mysql.
        self.base_dir = Path(tempfile.mkdtemp(prefix="galera-", dir="/tmp"))
        self.base_dir.chmod(0o755)
        try:
            taken_ports: set[int] = set()
            self.nodes = [GaleraNode(i, self.base_dir / f"node{i}", taken_ports) for i in range(1, size + 1)]
            address = "gcomm://" + ",".join(f"{HOST}:{node.gcomm_port}" for node in self.nodes)
            for node in self.nodes:
                node.write_options(self.galera_options, address)
        except BaseException:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            raise

    def node(self, i: int) -> GaleraNode:
        """Node i (from 1)."""
        if not 1 <= i <= len(self.nodes):
            raise IndexError(f"no node {i}: the cluster has {len(self.nodes)}")
        return self.nodes[i - 1]

    def start(self, timeout: float = 60) -> Self:
        """Bootstrap node 1, join the others (each by SST) and wait until all are Synced."""
        try:
            first, *others = self.nodes
            first.server.start(once_args=["--wsrep-new-cluster"])
            with ThreadPoolExecutor(len(others) or 1) as pool:  # a joiner waits while the donor is busy
                for started in [pool.submit(node.server.start) for node in others]:
                    started.result()
            self.wait_synced(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def server_url(self, i: int) -> str:
        """mysql://root:@127.0.0.1:PORT of node i, without a database."""
        return self.node(i).server.url

    def url(self, i: int, database: str = DATABASE) -> str:
        """mysql://root:@127.0.0.1:PORT/database of node i, the form of PET_API_DATABASE_URL."""
        return f"{self.server_url(i)}/{database}"

    def multi_host_url(self, database: str = DATABASE) -> str:
        """mysql://root:@127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/database: every node, in order."""
        hosts = ",".join(f"{HOST}:{node.server.port}" for node in self.nodes)
        return f"mysql://root:@{hosts}/{database}"

    def up(self) -> list[int]:
        """The nodes that are running and not frozen."""
        return [node.index for node in self.nodes if node.up]

    def kill(self, i: int) -> None:
        """SIGKILL node i, as a crash would (a frozen node is killed too)."""
        node = self.node(i)
        node.server.kill()
        node.frozen = False

    def freeze(self, i: int) -> None:
        """SIGSTOP node i: it holds its sockets open but answers nothing."""
        node = self.node(i)
        if (pid := node.server.pid) is None:
            raise RuntimeError(f"node {i} is not running")
        os.kill(pid, signal.SIGSTOP)
        node.frozen = True

    def thaw(self, i: int) -> None:
        """SIGCONT a frozen node i."""
        node = self.node(i)
        if (pid := node.server.pid) is not None:
            os.kill(pid, signal.SIGCONT)
        node.frozen = False

    def restart(self, i: int) -> None:
        """Start node i again (killing it first if it runs); it rejoins by IST or SST and answers SQL.

        As Debian's mariadb.service does (galera_recovery), the position a crash left unrecorded is first
        recovered from InnoDB, so the node asks for the write-sets it missed (IST), not a full copy (SST).
        """
        self.kill(i)
        node = self.node(i)
        node.server.start(once_args=node.recover_position())

    def heal(self, timeout: float = 60) -> None:
        """Thaw frozen nodes, restart dead ones and wait until all are Synced (a test's faults undone)."""
        for node in self.nodes:
            if node.frozen:
                self.thaw(node.index)
        if not self.up():
            raise RuntimeError("every node is down: the cluster must be bootstrapped again")
        for node in self.nodes:
            if not node.server.running():
                self.restart(node.index)
        self.wait_synced(timeout)

    def status(self, i: int) -> dict[str, str]:
        """Node i's wsrep% status variables (raises pymysql errors if it does not answer in 2 s)."""
        conn = connect_server(self.server_url(i), timeout=STATUS_TIMEOUT, read_timeout=STATUS_TIMEOUT)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep%'")
                return {name: value for name, value in cur.fetchall()}
        finally:
            conn.close()

    def variable(self, i: int, name: str) -> str:
        """A global server variable of node i."""
        return str(self.query(i, f"SELECT @@GLOBAL.{name}")[0][0])

    def query(
        self, i: int, sql: str, params: Sequence[object] = (), *, causal: bool = False
    ) -> list[tuple[object, ...]]:
        """Run one statement on node i (autocommit) and return its rows.

        ``causal``: the node first applies every write the cluster committed before (wsrep_sync_wait=1).
        """
        conn = connect_server(self.server_url(i), timeout=STATUS_TIMEOUT, read_timeout=10)
        try:
            with conn.cursor() as cur:
                if causal:
                    cur.execute("SET SESSION wsrep_sync_wait = 1")
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def wait_synced(self, timeout: float = 30) -> dict[int, dict[str, str]]:
        """Wait until every up node is Synced and ready in one primary component of all up nodes."""
        deadline = time.monotonic() + timeout
        while True:
            statuses: dict[int, dict[str, str]] = {}
            errors: dict[int, str] = {}
            for i in self.up():
                try:
                    statuses[i] = self.status(i)
                except pymysql.MySQLError as exc:
                    errors[i] = repr(exc)
            if not errors and _synced(list(statuses.values())):
                return statuses
            if time.monotonic() > deadline:
                summary = {i: " ".join(s.get(k, "?") for k in SUMMARY_KEYS) for i, s in statuses.items()} | errors
                raise TimeoutError(f"Galera nodes not synced after {timeout} s: {summary}")
            time.sleep(0.1)

    def create_database(self, name: str = DATABASE) -> str:
        """(Re)create an empty database through the first up node (DDL replicates); its URL there."""
        first = self.up()[0]
        create_database(self.server_url(first), name)
        return self.url(first, name)

    def checksum(self, table: str, database: str = DATABASE) -> dict[int, int | None]:
        """CHECKSUM TABLE database.table on every up node."""
        rows = {i: self.query(i, f"CHECKSUM TABLE `{database}`.`{table}`", causal=True) for i in self.up()}
        return {i: row[0][1] for i, row in rows.items()}  # type: ignore[misc]

    def stop(self) -> None:
        """Kill every node (and its SST helpers) and delete the cluster's files; safe to call twice."""
        errors: list[OSError] = []
        for node in self.nodes:
            try:
                if node.frozen:
                    self.thaw(node.index)
                node.server.kill()
            except OSError as exc:  # the other nodes must still be killed
                errors.append(exc)
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
