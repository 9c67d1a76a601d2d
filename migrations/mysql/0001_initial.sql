-- Users, tokens' revocations and login throttling. (pet-api before plugins created pets and records here
-- too: they now belong to the pets and records plugins' migrations, which adopt them.)
CREATE TABLE users (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(254) NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  nickname VARCHAR(64) NOT NULL,
  role VARCHAR(32) NOT NULL DEFAULT 'user',
  disabled TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE token_revocations (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  jti VARCHAR(64) NULL,
  user_id BIGINT NULL,
  not_before_ms BIGINT NULL,
  expires_at_ms BIGINT NOT NULL,
  KEY ix_token_revocations_expires (expires_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE login_failures (
  k VARCHAR(300) NOT NULL PRIMARY KEY,
  window_start_ms BIGINT NOT NULL,
  failures INT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
