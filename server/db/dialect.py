"""Every difference between MariaDB and SQLite SQL, in one object per database: services and migrations
ask the dialect for the piece they need instead of asking which database they run on."""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str  # also the directory of its migrations: migrations/<name>/
    text_order: str  # {value} (a text column or a parameter) as what orders it like MariaDB's utf8mb4_unicode_ci
    exact: str  # after a text expression: compare it exactly (MariaDB's collation folds accents and emoji)
    conflict_update: str  # an INSERT's "update the row whose key is taken" clause; {key} is the key column
    inserted_value: str  # within that clause, the value the INSERT proposed for column {column}
    exact_real: str  # a DOUBLE column {column} as JSON_ARRAY keeps it: SQLite's JSON keeps only 15 digits
    begin: str  # starts a transaction that holds its writes' locks from the start
    for_update: str  # after a SELECT in a transaction: lock the rows read until the commit
    index_hint: str  # after a table's name in FROM: read the table through index {index}
    join_in_order: str  # between two tables in FROM: read the left one first, whatever the optimizer estimates
    by_key: str  # after a table's name in FROM: reach its rows by the primary key only (the right of join_in_order)
    tables: str  # the names of the database's own tables
    columns: str  # the column names of table %s
    ledger: str  # creates the migration ledger, schema_migrations: one row per (plugin, version)
    ledger_upgrade: tuple[str, ...]  # turns the ledger of pet-api before plugins (version only) into that one
    lock_table: str  # creates schema_migration_lock: at most one row, the migrator holding the lock
    blob_literal: str  # a BLOB value written in a statement's text, from the {base64} or the {hex} of its bytes

    def on_conflict_update(self, key: str) -> str:
        """The clause that turns an INSERT into an update of the row holding `key`."""
        return self.conflict_update.format(key=key)

    def inserted(self, column: str) -> str:
        """Inside on_conflict_update: the value the INSERT proposed for the column."""
        return self.inserted_value.format(column=column)

    def ordered_text(self, value: str) -> str:
        """A text column or parameter as an expression that orders and compares it like MariaDB's
        utf8mb4_unicode_ci (case and accents ignored), on either database."""
        return self.text_order.format(value=value)

    def through_index(self, index: str) -> str:
        """After a table's name in FROM: read it through this index, whatever the optimizer estimates."""
        return self.index_hint.format(index=index)

    def real(self, column: str) -> str:
        """A DOUBLE column for JSON_ARRAY, every digit kept."""
        return self.exact_real.format(column=column)

    def blob(self, data: bytes) -> str:
        """The bytes as a literal in a statement's text (for a value too large to escape as a parameter on the event
        loop: a photo's chunks, made in the photo process): nothing in it needs escaping."""
        if "{base64}" in self.blob_literal:
            return self.blob_literal.format(base64=base64.b64encode(data).decode("ascii"))
        return self.blob_literal.format(hex=data.hex())


MYSQL = Dialect(
    name="mysql",
    text_order="{value}",  # utf8mb4_unicode_ci is the tables' collation
    exact=" COLLATE utf8mb4_bin",
    conflict_update=" ON DUPLICATE KEY UPDATE",
    inserted_value="VALUES({column})",
    exact_real="{column}",
    begin="BEGIN",
    for_update=" FOR UPDATE",
    index_hint=" FORCE INDEX ({index})",
    join_in_order="STRAIGHT_JOIN",
    by_key=" FORCE INDEX (PRIMARY)",
    tables="SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
    columns="SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s",
    ledger="CREATE TABLE IF NOT EXISTS schema_migrations (plugin VARCHAR(64) NOT NULL, version INT NOT NULL,"
           " name VARCHAR(128) NOT NULL, applied_at DATETIME(6) NOT NULL, PRIMARY KEY (plugin, version))"
           " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ledger_upgrade=("ALTER TABLE schema_migrations ADD COLUMN plugin VARCHAR(64) NOT NULL DEFAULT 'core' FIRST,"
                    " DROP PRIMARY KEY, ADD PRIMARY KEY (plugin, version)",
                    "ALTER TABLE schema_migrations ALTER COLUMN plugin DROP DEFAULT"),
    # A row, not GET_LOCK: Galera replicates rows but not named locks (issue 13).
    lock_table="CREATE TABLE IF NOT EXISTS schema_migration_lock (id INT NOT NULL PRIMARY KEY,"
               " owner VARCHAR(128) NOT NULL, taken_at DATETIME(6) NOT NULL, expires_at DATETIME(6) NOT NULL)"
               " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    # Base64, not X'<hex>': a third fewer bytes to send and for MariaDB to lex, which is most of what a large
    # literal costs it. The introducer spares the text the connection's utf8mb4 checks (base64 is ASCII).
    blob_literal="FROM_BASE64(_latin1'{base64}')",
)

SQLITE = Dialect(
    name="sqlite",
    text_order="UNICODE_CI({value})",  # MariaDB's sort key (server/db/collation.py); BINARY sorts 'b' after 'C'
    exact="",
    conflict_update=" ON CONFLICT ({key}) DO UPDATE SET",
    inserted_value="excluded.{column}",
    exact_real="CASE WHEN {column} IS NULL THEN NULL ELSE printf('%!.17g', {column}) END",
    begin="BEGIN IMMEDIATE",  # takes the write lock now: a later upgrade could fail with "database is locked"
    for_update="",  # BEGIN IMMEDIATE already holds the database's one write lock
    index_hint=" INDEXED BY {index}",
    join_in_order="CROSS JOIN",  # SQLite never reorders the two sides of a CROSS JOIN
    by_key=" NOT INDEXED",  # a rowid table (INTEGER PRIMARY KEY) is still reached by its rowid
    tables="SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    columns="SELECT name FROM pragma_table_info(%s)",
    ledger="CREATE TABLE IF NOT EXISTS schema_migrations (plugin TEXT NOT NULL, version INTEGER NOT NULL,"
           " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (plugin, version))",
    ledger_upgrade=("ALTER TABLE schema_migrations RENAME TO schema_migrations_before_plugins",
                    "CREATE TABLE schema_migrations (plugin TEXT NOT NULL, version INTEGER NOT NULL,"
                    " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (plugin, version))",
                    "INSERT INTO schema_migrations (plugin, version, name, applied_at)"
                    " SELECT 'core', version, name, applied_at FROM schema_migrations_before_plugins",
                    "DROP TABLE schema_migrations_before_plugins"),
    lock_table="CREATE TABLE IF NOT EXISTS schema_migration_lock (id INTEGER NOT NULL PRIMARY KEY,"
               " owner TEXT NOT NULL, taken_at TEXT NOT NULL, expires_at TEXT NOT NULL)",
    blob_literal="X'{hex}'",  # SQLite has no base64 function
)
