-- A pet's photo: its metadata (one row per pet) and its stored renditions (original, 1024, 256), in the
-- database so every worker, instance and Galera node serves the same photo and backups hold it.
CREATE TABLE pet_photos (
  pet_id BIGINT NOT NULL PRIMARY KEY,
  etag CHAR(32) NOT NULL,
  content_type VARCHAR(32) NOT NULL,
  width INT NOT NULL,
  height INT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  CONSTRAINT fk_pet_photos_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The renditions' bytes in chunks of at most 256 KiB (storage.CHUNK): each statement stays small for the
-- event loop that builds it, for max_allowed_packet and for Galera's write sets.
CREATE TABLE pet_photo_chunks (
  pet_id BIGINT NOT NULL,
  size VARCHAR(8) NOT NULL,
  seq INT NOT NULL,
  data MEDIUMBLOB NOT NULL,
  PRIMARY KEY (pet_id, size, seq),
  CONSTRAINT fk_pet_photo_chunks_photo FOREIGN KEY (pet_id) REFERENCES pet_photos (pet_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
