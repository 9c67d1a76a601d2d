-- Pets. pet-api before plugins created this table in the core's 0001_initial: such a database
-- records this migration without running it.
-- adopts: pets
CREATE TABLE pets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  species TEXT NOT NULL,
  breed TEXT NULL,
  sex TEXT NOT NULL DEFAULT 'unknown',
  birth_date TEXT NULL,
  status TEXT NOT NULL DEFAULT 'available',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX ix_pets_owner ON pets (owner_id, id);
