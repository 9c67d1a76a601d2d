-- A pet's history: one row per change to the pet, its records and its members, written in the transaction of
-- the change (a listener on app.changes). changed is a JSON object: field -> [old, new].
CREATE TABLE pet_history (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  pet_id BIGINT NOT NULL,
  at DATETIME(6) NOT NULL,
  actor_id BIGINT NULL,
  type VARCHAR(32) NOT NULL,
  action VARCHAR(32) NOT NULL,
  object_id BIGINT NOT NULL,
  changed MEDIUMTEXT NOT NULL,
  KEY ix_pet_history_pet (pet_id, at, id),
  CONSTRAINT fk_pet_history_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE,
  CONSTRAINT fk_pet_history_actor FOREIGN KEY (actor_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
