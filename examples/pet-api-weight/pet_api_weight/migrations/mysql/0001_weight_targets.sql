-- One target weight per pet, in the unit it was set in; it goes with its pet.
CREATE TABLE weight_targets (
  pet_id BIGINT NOT NULL PRIMARY KEY,
  weight DOUBLE NOT NULL,
  unit VARCHAR(2) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  CONSTRAINT fk_weight_targets_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
