-- Users, tokens' revocations, login throttling, pets and their health records.
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

CREATE TABLE pets (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner_id BIGINT NOT NULL,
  name VARCHAR(64) NOT NULL,
  species VARCHAR(16) NOT NULL,
  breed VARCHAR(64) NULL,
  sex VARCHAR(8) NOT NULL DEFAULT 'unknown',
  birth_date DATE NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'available',
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  version INT NOT NULL DEFAULT 1,
  KEY ix_pets_owner (owner_id, id),
  CONSTRAINT fk_pets_owner FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE records (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  pet_id BIGINT NOT NULL,
  kind VARCHAR(16) NOT NULL,
  date DATE NOT NULL,
  note VARCHAR(2000) NULL,
  value DOUBLE NULL,
  created_at DATETIME(6) NOT NULL,
  KEY ix_records_pet (pet_id, id),
  CONSTRAINT fk_records_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
