-- Health records under a pet. pet-api before plugins created this table in the core's 0001_initial: such a database
-- records this migration without running it.
-- adopts: records
CREATE TABLE records (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pet_id INTEGER NOT NULL REFERENCES pets (id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  date TEXT NOT NULL,
  note TEXT NULL,
  value REAL NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX ix_records_pet ON records (pet_id, id);
