-- Search by name (GET /v1/pets?q=, audit pets F1): pets.name_key holds the name as the service folds it
-- (server/plugins/pets/pet.py:search_key: NFKC, Unicode case folding, NFKC), written with the name; `q` is folded
-- by the same function and matched with LIKE under utf8mb4_bin, so both databases answer alike. SQL's LOWER cannot
-- do it: SQLite's lowers ASCII only, MariaDB's has Unicode 4.0 tables and no final sigma, and neither matches
-- Python's. VARCHAR(1152): a 64-character name's longest key (NFKC writes U+FDFA as 18 characters).
-- NULL until the pets plugin fills it at start (rows from before this migration, or written by an older instance
-- during a rolling update); ix_pets_unkeyed finds those without reading every pet.
ALTER TABLE pets ADD COLUMN name_key VARCHAR(1152) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  ADD KEY ix_pets_unkeyed (name_key(1));
