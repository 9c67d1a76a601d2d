"""Throwaway MariaDB servers for the tests (a pytest plugin, loaded from tests/conftest.py).

Fixtures: ``mysql_server_url`` (session) and ``private_mariadb`` (per test); helpers:
``PrivateMariaDB`` and ``create_database``.

Servers are run by pytest-mysql's ``MySQLExecutor`` through the small subclass below rather than
by its ``factories.mysql_proc`` fixture, which hard-wires the base class. That class cannot
initialise a datadir here: ``mariadb-install-db`` and ``mysqld_safe`` read the system's my.cnf,
whose Debian ``user = mysql`` wins over ``--user=root`` ("Ignoring user change to 'root'") and
the install fails; and the root account it creates logs in only over the unix socket, as the
OS user root. The subclass adds ``--no-defaults`` and a password-less root over TCP, and runs
``mariadbd`` itself instead of ``mysqld_safe`` (which would restart a server a test kills).
Gotchas: as root, mariadbd needs ``--user=root``; the unix socket path must stay under 108 bytes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

import pymysql
import pytest
from port_for import get_port
from pytest_mysql.executor import MySQLExecutor

ENV_URL = "PET_API_TEST_DATABASE_URL"
HOST = "127.0.0.1"
START_TIMEOUT = 30
# Isolated from the system's option files, so every setting the tests rely on is given here.
SERVER_ARGS = [
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--table-open-cache=1000",  # keeps the open-files request under common limits
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=64M",
    "--innodb-flush-log-at-trx-commit=2",  # survives a killed server, not a crashed OS
    "--innodb-use-native-aio=0",  # io_uring/libaio are often refused inside containers
]
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])


def find_tool(name: str) -> str | None:
    """Return the path of a MariaDB program (also looked for in /usr/sbin), or None."""
    return shutil.which(name, path=_SEARCH_PATH)


def _tool(name: str) -> str:
    if path := find_tool(name):
        return path
    raise FileNotFoundError(f"{name} not found: apt-get install mariadb-server")


def _user_args(run_as: str | None) -> list[str]:
    if run_as:
        return [f"--user={run_as}"]
    # mariadbd (and mariadb-install-db's bootstrap) refuse to run as root without --user=root.
    return ["--user=root"] if os.geteuid() == 0 else []


def _chown_tree(path: Path, user: str) -> None:
    shutil.chown(path, user, user)
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            shutil.chown(os.path.join(parent, name), user, user)


class _MariaDBExecutor(MySQLExecutor):
    """pytest-mysql's executor, running mariadbd directly and ignoring the system's my.cnf.

    With ``options_file`` the server reads that file instead of SERVER_ARGS (a Galera node: its SST
    script reads the same file); with ``run_as`` it runs as that OS user, owning base_dir; with
    ``install=False`` its datadir starts empty (a Galera joiner receives it by state transfer).
    """

    def __init__(
        self,
        base_dir: Path,
        port: int,
        extra_args: Sequence[str] = (),
        *,
        options_file: Path | None = None,
        run_as: str | None = None,
        install: bool = True,
    ) -> None:
        mariadbd = _tool("mariadbd")
        super().__init__(
            mysqld_safe=Path(mariadbd),
            mysqld=Path(mariadbd),
            admin_exec="mariadb-admin",  # unused: see shutdown()
            logfile_path=str(base_dir / "mariadbd.log"),
            params="",
            base_directory=base_dir,
            user="root",
            host=HOST,
            port=port,
            timeout=START_TIMEOUT,
            install_db=_tool("mariadb-install-db"),
        )
        if len(self.unixsocket) > 107:
            raise ValueError(f"unix socket path too long, use a shorter base_dir: {self.unixsocket}")
        self._run_as = run_as
        self._install = install
        self._base_command = [
            mariadbd,
            f"--defaults-file={options_file}" if options_file else "--no-defaults",
            *_user_args(run_as),
            f"--datadir={self.datadir}",
            f"--pid-file={self.pidfile}",
            f"--port={port}",
            f"--bind-address={HOST}",
            f"--socket={self.unixsocket}",
            f"--log-error={self.logfile_path}",
            f"--tmpdir={self.base_directory}",
            *([] if options_file else SERVER_ARGS),
            *extra_args,
        ]
        self.set_start_args(())

    def set_start_args(self, args: Sequence[str]) -> None:
        """Arguments added to the command line from the next start on (e.g. --wsrep-new-cluster)."""
        self.command_parts = [*self._base_command, *args]
        self.command = shlex.join(self.command_parts)

    def initialise_mysql_db_install(self) -> bool:
        """Initialise the datadir once, with a password-less root for every host."""
        if not self._initialised and self._run_as:
            Path(self.logfile_path).touch()
            _chown_tree(self.base_directory, self._run_as)  # datadir, socket, pid file, log, tmpdir
        if not self._initialised and self._install:
            with open(self.logfile_path, "ab") as log:
                subprocess.run(
                    [
                        str(self.install_db),
                        "--no-defaults",
                        "--auth-root-authentication-method=normal",
                        "--skip-test-db",
                        *_user_args(self._run_as),
                        f"--datadir={self.datadir}",
                        f"--tmpdir={self.base_directory}",
                        *SERVER_ARGS,
                    ],
                    check=True,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        self._initialised = True
        return True

    def shutdown(self) -> None:
        """Do nothing: the SIGTERM that mirakuru sends next shuts mariadbd down cleanly."""
        # mariadb-admin shutdown would read the system's my.cnf and poll the pid file once a second.


class PrivateMariaDB:
    """A throwaway MariaDB server in base_dir that can be stopped, killed and restarted on one port."""

    def __init__(
        self,
        base_dir: Path,
        *,
        extra_args: Sequence[str] = (),
        options_file: Path | None = None,
        run_as: str | None = None,
        install: bool = True,
    ) -> None:
        base_dir.mkdir(parents=True, exist_ok=True)
        port = get_port(None)
        assert port is not None
        self.port = port
        self._executor = _MariaDBExecutor(
            base_dir, self.port, extra_args, options_file=options_file, run_as=run_as, install=install
        )
        self.datadir: Path = self._executor.datadir
        self.log_path = Path(self._executor.logfile_path)

    @property
    def url(self) -> str:
        """Server URL without a database: mysql://root:@127.0.0.1:PORT."""
        return f"mysql://root:@{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        process = self._executor.process
        return process.pid if process is not None and self.running() else None

    def command(self, extra_args: Sequence[str] = ()) -> list[str]:
        """The server's command line with extra_args added (to run it once, e.g. with --wsrep-recover)."""
        return [*self._executor._base_command, *extra_args]

    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._executor.running()

    def start(self, *, once_args: Sequence[str] = ()) -> Self:
        """Start the server (initialising its datadir the first time) and wait until it answers.

        ``once_args`` are added to this start's command line only.
        """
        if self.running():
            return self
        deadline = time.monotonic() + START_TIMEOUT
        self._executor.set_start_args(once_args)
        try:
            self._executor.start()
            _wait_for_sql(self.url, deadline)
        except Exception as exc:
            self.kill()
            log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
            raise RuntimeError(f"MariaDB did not start on port {self.port}; log tail:\n{log}") from exc
        return self

    def stop(self) -> None:
        """Shut the server down cleanly and wait for it to exit."""
        self._executor.stop()

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        self._executor.kill()

    def remove_datadir(self) -> None:
        """Stop the server and delete its data (the log is kept)."""
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def connect_server(server_url: str, timeout: float = 10, read_timeout: float | None = None) -> pymysql.Connection:
    """A pymysql connection to the server of a mysql:// URL (no database selected)."""
    parts = urlsplit(server_url)
    return pymysql.connect(
        host=parts.hostname or HOST,
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        connect_timeout=timeout,
        read_timeout=read_timeout,
        write_timeout=read_timeout,
        autocommit=True,
    )


def connect_database(database_url: str) -> pymysql.Connection:
    """A pymysql connection to the server of a mysql:// URL, with the URL's database selected."""
    conn = connect_server(database_url)
    conn.select_db(unquote(urlsplit(database_url).path.lstrip("/")))
    return conn


def _wait_for_sql(server_url: str, deadline: float) -> None:
    while True:
        try:
            connect_server(server_url, timeout=2).close()
            return
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def rows_read(conn: pymysql.Connection) -> int:
    """Rows the server's handlers have read so far (index and table scans), all sessions together."""
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Handler_read_next', 'Handler_read_rnd_next')")
        return sum(int(value) for _, value in cur.fetchall())


@contextlib.contextmanager
def older_read_view(database_url: str) -> Iterator[pymysql.cursors.Cursor]:
    """A transaction holding a read view on the database for the block (a long report, a dump's snapshot): InnoDB's
    purge keeps every index entry an update or a delete replaces meanwhile. Yields its cursor."""
    conn = connect_database(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            yield cur
    finally:
        conn.close()


def server_url_of(url: str) -> str:
    """Strip the database part (and anything after it) from a mysql:// URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@contextlib.contextmanager
def data_only_account(database_url: str) -> Iterator[str]:
    """An account with the data privileges only (SELECT, INSERT, UPDATE, DELETE: no CREATE, no ALTER) on the URL's
    database, dropped afterwards; yields the URL that logs in with it."""
    parts = urlsplit(database_url)
    database = unquote(parts.path.lstrip("/"))
    user = f"{database}_data"
    conn = connect_server(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY 'data-only'", (user,))
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{database}`.* TO %s@'%%'", (user,))
        yield parts._replace(netloc=f"{user}:data-only@{parts.hostname}:{parts.port or 3306}").geturl()
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        conn.close()


def create_database(server_url: str, name: str) -> str:
    """(Re)create the empty utf8mb4 database ``name`` on the server; return its URL."""
    if not re.fullmatch(r"\w{1,64}", name):
        raise ValueError(f"bad database name: {name!r}")
    conn = connect_server(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()
    return f"{server_url_of(server_url)}/{name}"


@pytest.fixture(scope="session")
def mysql_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL (no database part) of $PET_API_TEST_DATABASE_URL's server, else of a private MariaDB."""
    if url := os.environ.get(ENV_URL):
        yield server_url_of(url)
        return
    server = PrivateMariaDB(tmp_path_factory.mktemp("mariadb"))
    with server:
        yield server.url
    server.remove_datadir()


@pytest.fixture
def private_mariadb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrivateMariaDB]:
    """A started PrivateMariaDB of this test alone; indirect parametrization may pass extra_args."""
    if find_tool("mariadbd") is None and os.environ.get(ENV_URL):
        pytest.skip("mariadbd not installed (apt-get install mariadb-server)")
    server = PrivateMariaDB(tmp_path / "mariadb", extra_args=getattr(request, "param", ()))
    with server:
        yield server
    server.remove_datadir()
