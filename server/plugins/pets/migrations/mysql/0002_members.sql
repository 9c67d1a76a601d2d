-- Who may do what with a pet: one row per member, the owner included (pets.owner_id names the same user).
-- The access rule (server/plugins/pets/access.py) reads it on every request.
CREATE TABLE pet_members (
  pet_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  role VARCHAR(16) NOT NULL,
  since DATETIME(6) NOT NULL,
  PRIMARY KEY (pet_id, user_id),
  KEY ix_pet_members_user (user_id, role, pet_id),
  CONSTRAINT fk_pet_members_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE,
  CONSTRAINT fk_pet_members_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO pet_members (pet_id, user_id, role, since) SELECT id, owner_id, 'owner', created_at FROM pets;
