-- SQLite twin of mysql/0001_initial.sql: users, tokens' revocations and login throttling.
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  nickname TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'user',
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE token_revocations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  jti TEXT NULL,
  user_id INTEGER NULL,
  not_before_ms INTEGER NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX ix_token_revocations_expires ON token_revocations (expires_at_ms);

CREATE TABLE login_failures (
  k TEXT NOT NULL PRIMARY KEY,
  window_start_ms INTEGER NOT NULL,
  failures INTEGER NOT NULL
);
