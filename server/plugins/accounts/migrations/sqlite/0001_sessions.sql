-- SQLite twin of mysql/0001_sessions.sql.
CREATE TABLE sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  device TEXT NOT NULL,
  address TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_used_at TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER NULL
);
CREATE INDEX ix_sessions_user ON sessions (user_id, id);

CREATE TABLE refresh_tokens (
  token_hash TEXT NOT NULL PRIMARY KEY,
  session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  access_jti TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  used_at_ms INTEGER NULL
);
CREATE INDEX ix_refresh_tokens_session ON refresh_tokens (session_id);
