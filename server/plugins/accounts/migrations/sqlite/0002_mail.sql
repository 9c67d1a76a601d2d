-- SQLite twin of mysql/0002_mail.sql.
ALTER TABLE users ADD COLUMN email_verified_at TEXT NULL;
ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT 'en';

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NULL REFERENCES users (id) ON DELETE CASCADE,
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at TEXT NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  claimed_until_ms INTEGER NULL,
  sent_at_ms INTEGER NULL,
  failed_at_ms INTEGER NULL,
  last_error TEXT NULL
);
CREATE INDEX ix_outbox_due ON outbox (sent_at_ms, failed_at_ms, next_attempt_ms);
CREATE INDEX ix_outbox_user ON outbox (user_id);

CREATE TABLE account_tokens (
  token_hash TEXT NOT NULL PRIMARY KEY,
  purpose TEXT NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX ix_account_tokens_user ON account_tokens (user_id, purpose);
