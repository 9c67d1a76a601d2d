-- One target weight per pet, in the unit it was set in; it goes with its pet.
CREATE TABLE weight_targets (
  pet_id INTEGER NOT NULL PRIMARY KEY REFERENCES pets (id) ON DELETE CASCADE,
  weight REAL NOT NULL,
  unit TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
