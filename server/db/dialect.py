"""Every difference between MariaDB and SQLite SQL, in one object per database: services and migrations
ask the dialect for the piece they need instead of asking which database they run on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str  # also the directory of its migrations: migrations/<name>/
    nocase: str  # after a text column: order it case-insensitively
    exact: str  # after a text expression: compare it exactly (MariaDB's collation folds accents and emoji)
    conflict_update: str  # an INSERT's "update the row whose key is taken" clause; {key} is the key column
    inserted_value: str  # within that clause, the value the INSERT proposed for column {column}
    exact_real: str  # a DOUBLE column {column} as JSON_ARRAY keeps it: SQLite's JSON keeps only 15 digits
    begin: str  # starts a transaction that holds its writes' locks from the start
    tables: str  # the names of the database's own tables
    ledger: str  # creates the migration ledger, schema_migrations
    lock: str | None  # takes the named lock (name, seconds to wait): 1 when held; None where BEGIN serializes
    unlock: str | None  # releases it (name)

    def on_conflict_update(self, key: str) -> str:
        """The clause that turns an INSERT into an update of the row holding `key`."""
        return self.conflict_update.format(key=key)

    def inserted(self, column: str) -> str:
        """Inside on_conflict_update: the value the INSERT proposed for the column."""
        return self.inserted_value.format(column=column)

    def real(self, column: str) -> str:
        """A DOUBLE column for JSON_ARRAY, every digit kept."""
        return self.exact_real.format(column=column)


MYSQL = Dialect(
    name="mysql",
    nocase="",  # utf8mb4_unicode_ci, the tables' collation, already ignores case
    exact=" COLLATE utf8mb4_bin",
    conflict_update=" ON DUPLICATE KEY UPDATE",
    inserted_value="VALUES({column})",
    exact_real="{column}",
    begin="BEGIN",
    tables="SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
    ledger="CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, name VARCHAR(128) NOT NULL,"
           " applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    lock="SELECT GET_LOCK(%s, %s)",
    unlock="SELECT RELEASE_LOCK(%s)",
)

SQLITE = Dialect(
    name="sqlite",
    nocase=" COLLATE NOCASE",  # the default BINARY collation sorts 'b' after 'C'
    exact="",
    conflict_update=" ON CONFLICT ({key}) DO UPDATE SET",
    inserted_value="excluded.{column}",
    exact_real="CASE WHEN {column} IS NULL THEN NULL ELSE printf('%!.17g', {column}) END",
    begin="BEGIN IMMEDIATE",  # takes the write lock now: a later upgrade could fail with "database is locked"
    tables="SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    ledger="CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
           " applied_at TEXT NOT NULL)",
    lock=None,
    unlock=None,
)
