-- A second factor (TOTP, RFC 6238) per account: its secret (pending until confirmed with a code), the last
-- time step a code was accepted at (a code works once), and single-use recovery codes stored as SHA-256 only.
CREATE TABLE mfa_factors (
  user_id BIGINT NOT NULL PRIMARY KEY,
  secret VARCHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  confirmed_at DATETIME(6) NULL,
  last_step BIGINT NOT NULL DEFAULT 0,
  CONSTRAINT fk_mfa_factors_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE mfa_recovery_codes (
  user_id BIGINT NOT NULL,
  code_hash CHAR(64) NOT NULL,
  used_at_ms BIGINT NULL,
  PRIMARY KEY (user_id, code_hash),
  CONSTRAINT fk_mfa_recovery_codes_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
