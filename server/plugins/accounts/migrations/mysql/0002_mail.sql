-- The mail outbox (written in the transaction of the action, delivered by the background sender), the
-- single-use password-reset and e-mail-verification tokens (stored only as SHA-256 hashes), and the users'
-- verified flag and language (for their messages).
ALTER TABLE users ADD COLUMN email_verified_at DATETIME(6) NULL, ADD COLUMN language VARCHAR(8) NOT NULL DEFAULT 'en';

CREATE TABLE outbox (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NULL,
  recipient VARCHAR(254) NOT NULL,
  subject VARCHAR(255) NOT NULL,
  body TEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  next_attempt_ms BIGINT NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  claimed_until_ms BIGINT NULL,
  sent_at_ms BIGINT NULL,
  failed_at_ms BIGINT NULL,
  last_error VARCHAR(255) NULL,
  KEY ix_outbox_due (sent_at_ms, failed_at_ms, next_attempt_ms),
  KEY ix_outbox_user (user_id),
  CONSTRAINT fk_outbox_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE account_tokens (
  token_hash CHAR(64) NOT NULL PRIMARY KEY,
  purpose VARCHAR(16) NOT NULL,
  user_id BIGINT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  KEY ix_account_tokens_user (user_id, purpose),
  CONSTRAINT fk_account_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;
