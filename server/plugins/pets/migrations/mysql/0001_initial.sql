-- Pets. pet-api before plugins created this table in the core's 0001_initial: such a database
-- records this migration without running it.
-- adopts: pets
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
