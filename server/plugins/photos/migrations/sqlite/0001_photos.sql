-- A pet's photo: its metadata (one row per pet) and its stored renditions (original, 1024, 256).
CREATE TABLE pet_photos (
  pet_id INTEGER NOT NULL PRIMARY KEY REFERENCES pets (id) ON DELETE CASCADE,
  etag TEXT NOT NULL,
  content_type TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE pet_photo_chunks (
  pet_id INTEGER NOT NULL REFERENCES pet_photos (pet_id) ON DELETE CASCADE,
  size TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (pet_id, size, seq)
);
