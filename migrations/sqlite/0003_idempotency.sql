-- SQLite twin of mysql/0003_idempotency.sql.
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL,
  headers TEXT NULL,
  body TEXT NULL,
  created_at TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, idem_key)
);
CREATE INDEX ix_idempotency_keys_expires ON idempotency_keys (expires_at_ms);
