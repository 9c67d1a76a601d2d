-- SQLite twin of mysql/0001_initial.sql.
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

CREATE TABLE pets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  species TEXT NOT NULL,
  breed TEXT NULL,
  sex TEXT NOT NULL DEFAULT 'unknown',
  birth_date TEXT NULL,
  status TEXT NOT NULL DEFAULT 'available',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX ix_pets_owner ON pets (owner_id, id);

CREATE TABLE records (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pet_id INTEGER NOT NULL REFERENCES pets (id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  date TEXT NOT NULL,
  note TEXT NULL,
  value REAL NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX ix_records_pet ON records (pet_id, id);
