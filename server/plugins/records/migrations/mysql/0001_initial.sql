-- Health records under a pet. pet-api before plugins created this table in the core's 0001_initial: such a database
-- records this migration without running it.
-- adopts: records
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
