-- A pet's history: one row per change to the pet, its records and its members, written in the transaction of
-- the change (a listener on app.changes). changed is a JSON object: field -> [old, new].
CREATE TABLE pet_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pet_id INTEGER NOT NULL REFERENCES pets (id) ON DELETE CASCADE,
  at TEXT NOT NULL,
  actor_id INTEGER NULL REFERENCES users (id) ON DELETE SET NULL,
  type TEXT NOT NULL,
  action TEXT NOT NULL,
  object_id INTEGER NOT NULL,
  changed TEXT NOT NULL
);
CREATE INDEX ix_pet_history_pet ON pet_history (pet_id, at, id);
