"""Versioned SQL migrations, the core's and each plugin's: <folder>/<dialect>/NNNN_name.sql, recorded per
plugin in schema_migrations (plugin, version); one migrator at a time through a row in schema_migration_lock."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import re
import secrets
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql.err

from server.db import Database, IntegrityViolation, column
from server.db.dialect import MYSQL, SQLITE
from server.errors import ServiceUnavailable

log = logging.getLogger("pet_api.migrations")

CORE = "core"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"
FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
DIALECTS = (MYSQL.name, SQLITE.name)  # each a folder of a plugin's migrations
ADOPTS_RE = re.compile(r"^--\s*adopts:\s*(.+)$", re.M)
LOCK_TTL = dt.timedelta(minutes=5)  # a lock not renewed for this long belongs to a migrator that died
LOCK_RENEW_SECONDS = 30.0
LOCK_POLL_SECONDS = 0.25
LOCK_WAIT_SECONDS = 3600.0
LOCK_UNAVAILABLE_TRIES = 5  # a taker that loses a Galera certification race sees 1213: try again, a few times

Source = tuple[str, Path]  # (plugin, the folder holding its mysql/ and sqlite/)
CORE_SOURCE: Source = (CORE, MIGRATIONS_DIR)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path
    plugin: str = CORE
    adopted: bool = False  # recorded without running: the tables it creates were already there

    @property
    def label(self) -> str:
        """'pets 0001_initial'."""
        return f"{self.plugin} {self.version:04d}_{self.name}"

    def statements(self) -> list[str]:
        """The file's statements: lines starting with '--' dropped, then split on the semicolons that end a line and
        a complete statement (a trigger's BEGIN ... END keeps the semicolons inside its body)."""
        text = "\n".join(line for line in self.path.read_text().splitlines() if not line.strip().startswith("--"))
        statements, statement = [], ""
        for piece in re.split(r";\s*$", text, flags=re.M):
            statement = f"{statement};{piece}" if statement else piece
            if sqlite3.complete_statement(f"{statement};"):
                statements.append(statement.strip())
                statement = ""
        return [s for s in [*statements, statement.strip()] if s]

    def adopts(self) -> frozenset[str]:
        """Tables named by '-- adopts: t1, t2' lines: when all exist, the migration is recorded without running
        (tables that an older pet-api created in the core's migrations and a plugin now owns)."""
        return frozenset(t.strip() for line in ADOPTS_RE.findall(self.path.read_text()) for t in line.split(",")
                         if t.strip())


class MigrationFolderError(ValueError):
    """A migrations folder holds a file that is not a migration, a version twice, or a version one dialect lacks."""


def check_folder(directory: Path) -> None:
    """Raise MigrationFolderError naming the first entry of <directory>/mysql/ or sqlite/ that is not a
    NNNN_name.sql file (dot files aside: editors' and systems' own), a version given twice, or a version that
    one dialect has and the other lacks: `migrate` would skip it without a word."""
    versions: dict[str, dict[int, Path]] = {}
    for dialect in DIALECTS:
        folder, versions[dialect] = directory / dialect, {}
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            if path.name.startswith("."):
                continue
            match = FILE_RE.match(path.name)
            if match is None or not path.is_file():
                raise MigrationFolderError(f"{path} is not named NNNN_name.sql (four digits, an underscore, then "
                                           "lower-case letters, digits and underscores)")
            version = int(match.group(1))
            if version in versions[dialect]:
                raise MigrationFolderError(f"{path} has the version of {versions[dialect][version].name}")
            versions[dialect][version] = path
    mysql, sqlite = (versions[dialect] for dialect in DIALECTS)
    for version in sorted(mysql.keys() ^ sqlite.keys()):
        has, lacks = DIALECTS if version in mysql else DIALECTS[::-1]
        raise MigrationFolderError(f"{versions[has][version]} has no {lacks}/ counterpart (version {version:04d})")


def available(dialect: str, directory: Path = MIGRATIONS_DIR, plugin: str = CORE) -> list[Migration]:
    """Every migration file of one plugin (the core by default) for the dialect, in version order."""
    found = []
    for path in sorted((directory / dialect).glob("*.sql")):
        m = FILE_RE.match(path.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), path, plugin))
    return found


async def _tables(db: Database) -> set[str]:
    return {str(row[0]) for row in await db.fetch_all(db.dialect.tables)}


async def _ledger_is_per_plugin(db: Database) -> bool:
    return any(row[0] == "plugin" for row in await db.fetch_all(db.dialect.columns, ("schema_migrations",)))


async def applied(db: Database) -> set[tuple[str, int]]:
    """(plugin, version) recorded as applied; none when there is no ledger yet (reading never creates it).
    A ledger of pet-api before plugins (version only) holds core migrations."""
    if "schema_migrations" not in await _tables(db):
        return set()
    if not await _ledger_is_per_plugin(db):
        return {(CORE, column(row[0], int)) for row in await db.fetch_all("SELECT version FROM schema_migrations")}
    rows = await db.fetch_all("SELECT plugin, version FROM schema_migrations")
    return {(column(row[0], str), column(row[1], int)) for row in rows}


async def applied_versions(db: Database, plugin: str = CORE) -> set[int]:
    """Versions of one plugin (the core by default) recorded as applied."""
    return {version for owner, version in await applied(db) if owner == plugin}


async def pending(db: Database, sources: Sequence[Source]) -> list[Migration]:
    """Migrations of these sources (the core's first, then each plugin's in dependency order) not yet applied."""
    done = await applied(db)
    return [m for plugin, folder in sources for m in available(db.dialect.name, folder, plugin)
            if (m.plugin, m.version) not in done]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class MigrationLockTimeout(RuntimeError):
    """Another migrator kept the lock for longer than we would wait."""


class MigrationFailed(RuntimeError):
    """The database refused a statement of `migrate` (a missing privilege, a column a half-applied migration
    already added...): not an outage (those stay ServiceUnavailable). Its text names the step (the migration's
    plugin and version) and the server's error code and text."""


# What a statement that reached the database and was refused raises (outages are ServiceUnavailable by then).
STATEMENT_ERRORS = (pymysql.err.MySQLError, sqlite3.Error, IntegrityViolation)


def server_error(exc: BaseException) -> str:
    """'error 1142: CREATE command denied ...' (MariaDB) or 'SQLITE_ERROR: duplicate column name: x'."""
    if isinstance(exc, IntegrityViolation) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        return f"error {exc.args[0]}: {exc.args[1]}"
    if isinstance(exc, sqlite3.Error):
        return f"{exc.sqlite_errorname or exc.__class__.__name__}: {exc}"
    return f"{exc.__class__.__name__}: {exc}"


@contextmanager
def migration_step(step: str) -> Iterator[None]:
    """Turn a statement the database refused within this step into MigrationFailed('<step> failed: <error>')."""
    try:
        yield
    except STATEMENT_ERRORS as exc:
        raise MigrationFailed(f"{step} failed: {server_error(exc)}") from exc


OnWait = Callable[[str], None]  # told once, in one line, that a migrator waits for the lock and for whom


async def _take_lock(db: Database, owner: str, *, ttl: dt.timedelta, wait: float, on_wait: OnWait) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    unavailable = 0
    told = False
    while True:
        now = _utcnow()
        try:
            await db.execute("INSERT INTO schema_migration_lock (id, owner, taken_at, expires_at)"
                             " VALUES (1, %s, %s, %s)", (owner, now, now + ttl))
            return
        except IntegrityViolation:
            pass  # held by another migrator
        except ServiceUnavailable:
            unavailable += 1
            if unavailable >= LOCK_UNAVAILABLE_TRIES:
                raise
        stale = await db.fetch_one("SELECT owner, taken_at FROM schema_migration_lock WHERE id = 1 AND expires_at < %s",
                                   (now,))
        if stale is not None:
            took = await db.execute("UPDATE schema_migration_lock SET owner = %s, taken_at = %s, expires_at = %s"
                                    " WHERE id = 1 AND owner = %s AND expires_at < %s",
                                    (owner, now, now + ttl, stale[0], now))
            if took.rowcount == 1:
                log.warning("took over a stale migration lock held by %s since %s (not renewed for %s)",
                            stale[0], stale[1], ttl)
                return
        if not told:
            told = True
            holder = await db.fetch_one("SELECT owner, taken_at, expires_at FROM schema_migration_lock WHERE id = 1")
            if holder is not None:
                on_wait(f"waiting for the migration lock: another migrate ({holder[0]!s}, since {holder[1]!s} UTC)"
                        f" holds it; taken over if not renewed by {holder[2]!s} UTC, else given up after"
                        f" {wait:.0f} s")
        if loop.time() >= deadline:
            holder = await db.fetch_one("SELECT owner, taken_at FROM schema_migration_lock WHERE id = 1")
            who = f"{holder[0]!s}, since {holder[1]!s}" if holder else "?"
            raise MigrationLockTimeout(f"another migrate ({who}) holds the migration lock; try again later")
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def _renew_lock(db: Database, owner: str, ttl: dt.timedelta, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            renewed = await db.execute("UPDATE schema_migration_lock SET expires_at = %s WHERE id = 1 AND owner = %s",
                                       (_utcnow() + ttl, owner))
        except ServiceUnavailable:
            continue
        if renewed.rowcount != 1:
            log.error("the migration lock was taken over by another migrator while this one held it")


@asynccontextmanager
async def migration_lock(db: Database, *, ttl: dt.timedelta = LOCK_TTL, wait: float | None = None,
                         renew_every: float = LOCK_RENEW_SECONDS, on_wait: OnWait = log.warning) -> AsyncIterator[str]:
    """Hold the one migration lock (a row every node of a Galera cluster sees, unlike GET_LOCK): a second
    migrator waits for it (up to wait seconds, LOCK_WAIT_SECONDS by default, then MigrationLockTimeout), saying so
    once through on_wait (who holds it, since and until when); a lock not renewed within ttl is taken over with a
    warning. Yields the owner id."""
    wait = LOCK_WAIT_SECONDS if wait is None else wait
    owner = f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"
    with migration_step("taking the migration lock (schema_migration_lock)"):
        if "schema_migration_lock" not in await _tables(db):
            await db.execute(db.dialect.lock_table)  # IF NOT EXISTS: two first migrators may both get here
        await _take_lock(db, owner, ttl=ttl, wait=wait, on_wait=on_wait)
    renewal = asyncio.get_running_loop().create_task(_renew_lock(db, owner, ttl, renew_every))
    try:
        yield owner
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
        with migration_step("releasing the migration lock (schema_migration_lock)"):
            await db.execute("DELETE FROM schema_migration_lock WHERE id = 1 AND owner = %s", (owner,))


async def _ensure_ledger(db: Database) -> None:
    """Create the ledger, or turn the one of pet-api before plugins into the per-plugin one (rows kept)."""
    if "schema_migrations" not in await _tables(db):
        await db.execute(db.dialect.ledger)
    elif not await _ledger_is_per_plugin(db):
        async with db.transaction() as tx:  # SQLite: atomic; MariaDB: each ALTER commits by itself
            for statement in db.dialect.ledger_upgrade:
                await tx.execute(statement)
        log.warning("migration ledger upgraded to one row per (plugin, version)")


async def migrate(db: Database, sources: Sequence[Source], *, on_wait: OnWait = log.warning) -> list[Migration]:
    """Apply every pending migration of these sources in order, each recorded when its statements succeeded (or
    recorded alone when it adopts tables that exist); returns them. A statement the database refuses raises
    MigrationFailed naming the migration (or the ledger or lock step); on_wait hears about a lock held by another."""
    done: list[Migration] = []
    async with migration_lock(db, on_wait=on_wait):
        with migration_step("preparing the migration ledger (schema_migrations)"):
            await _ensure_ledger(db)
            todo = await pending(db, sources)
        for migration in todo:
            with migration_step(f"migration {migration.label}"):
                adopts = migration.adopts()
                adopted = bool(adopts) and adopts <= await _tables(db)
                async with db.transaction() as tx:  # DDL commits implicitly on MySQL; SQLite keeps it atomic
                    if not adopted:
                        for statement in migration.statements():
                            await tx.execute(statement)
                    await tx.execute("INSERT INTO schema_migrations (plugin, version, name, applied_at)"
                                     " VALUES (%s, %s, %s, %s)",
                                     (migration.plugin, migration.version, migration.name, _utcnow()))
            done.append(dataclasses.replace(migration, adopted=adopted))
    return done
