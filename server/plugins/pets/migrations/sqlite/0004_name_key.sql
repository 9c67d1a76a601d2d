-- SQLite twin of mysql/0004_name_key.sql: the folded name `q` is matched against (SQLite's LIKE folds ASCII only,
-- and both sides are folded already); the partial index finds the rows the pets plugin still has to key at start.
ALTER TABLE pets ADD COLUMN name_key TEXT NULL;
CREATE INDEX ix_pets_unkeyed ON pets (id) WHERE name_key IS NULL;
