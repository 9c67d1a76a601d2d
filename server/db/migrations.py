"""Versioned SQL migrations: migrations/<dialect>/NNNN_name.sql, recorded in schema_migrations."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from server.db import Database, column

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"
LOCK_NAME = "pet_api.migrate"
FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        """The file's statements, split on semicolons that end a line."""
        text = "\n".join(line for line in self.path.read_text().splitlines() if not line.strip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]


def available(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file for the dialect, in version order."""
    found = []
    for path in sorted((directory / dialect).glob("*.sql")):
        m = FILE_RE.match(path.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), path))
    return found


async def applied_versions(db: Database) -> set[int]:
    """Versions recorded as applied; none when the ledger does not exist yet (reading never creates it)."""
    if not await _has_ledger(db):
        return set()
    return {column(row[0], int) for row in await db.fetch_all("SELECT version FROM schema_migrations")}


async def _has_ledger(db: Database) -> bool:
    return any(row[0] == "schema_migrations" for row in await db.fetch_all(db.dialect.tables))


async def pending(db: Database) -> list[Migration]:
    """Migrations not yet applied."""
    done = await applied_versions(db)
    return [m for m in available(db.dialect.name) if m.version not in done]


@asynccontextmanager
async def _one_migrator(db: Database) -> AsyncIterator[None]:
    """A named lock makes a second `migrate` (another VM deploying) wait instead of colliding; where the
    dialect has none (SQLite), BEGIN IMMEDIATE already serializes writers."""
    lock, unlock = db.dialect.lock, db.dialect.unlock
    if lock is None or unlock is None:
        yield
        return
    wait = max(1, int(db.statement_timeout or 3600) - 1)  # answer before the statement timeout cuts the wait
    async with db.transaction() as holder:  # the lock belongs to this connection's session
        row = await holder.fetch_one(lock, (LOCK_NAME, wait))
        if not row or row[0] != 1:
            raise RuntimeError(f"another migrate holds the lock {LOCK_NAME!r}; try again when it has finished")
        try:
            yield
        finally:
            await holder.fetch_one(unlock, (LOCK_NAME,))


async def migrate(db: Database) -> list[Migration]:
    """Apply every pending migration in order; each one is recorded when its statements succeeded."""
    async with _one_migrator(db):
        if not await _has_ledger(db):
            await db.execute(db.dialect.ledger)
        todo = await pending(db)
        for migration in todo:
            async with db.transaction() as tx:  # DDL commits implicitly on MySQL; SQLite keeps it atomic
                for statement in migration.statements():
                    await tx.execute(statement)
                await tx.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                                 (migration.version, migration.name, dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    return todo
