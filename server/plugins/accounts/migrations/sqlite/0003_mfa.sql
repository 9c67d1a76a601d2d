-- SQLite twin of mysql/0003_mfa.sql.
CREATE TABLE mfa_factors (
  user_id INTEGER NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  secret TEXT NOT NULL,
  created_at TEXT NOT NULL,
  confirmed_at TEXT NULL,
  last_step INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE mfa_recovery_codes (
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,
  used_at_ms INTEGER NULL,
  PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;
