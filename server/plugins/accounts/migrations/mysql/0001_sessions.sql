-- Sessions (one per login, per device) and their refresh tokens, stored only as SHA-256 hashes. A used token
-- keeps its row (used_at_ms set) so that presenting it again is recognised as a replay and ends the session;
-- access_jti names the access token issued with it, revoked when the pair is rotated.
CREATE TABLE sessions (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  device VARCHAR(128) NOT NULL,
  address VARCHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  last_used_at DATETIME(6) NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  ended_at_ms BIGINT NULL,
  KEY ix_sessions_user (user_id, id),
  CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE refresh_tokens (
  token_hash CHAR(64) NOT NULL PRIMARY KEY,
  session_id BIGINT NOT NULL,
  access_jti VARCHAR(32) NOT NULL,
  created_at_ms BIGINT NOT NULL,
  used_at_ms BIGINT NULL,
  KEY ix_refresh_tokens_session (session_id),
  CONSTRAINT fk_refresh_tokens_session FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;
