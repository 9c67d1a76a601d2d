-- Who may do what with a pet: one row per member, the owner included (pets.owner_id names the same user).
-- The access rule (server/plugins/pets/access.py) reads it on every request.
CREATE TABLE pet_members (
  pet_id INTEGER NOT NULL REFERENCES pets (id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  since TEXT NOT NULL,
  PRIMARY KEY (pet_id, user_id)
) WITHOUT ROWID;
CREATE INDEX ix_pet_members_user ON pet_members (user_id, role, pet_id);
INSERT INTO pet_members (pet_id, user_id, role, since) SELECT id, owner_id, 'owner', created_at FROM pets;
