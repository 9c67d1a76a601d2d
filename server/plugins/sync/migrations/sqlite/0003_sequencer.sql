-- The sequencer (see the mysql file): seq becomes nullable, an id orders the unnumbered rows. SQLite cannot change a
-- primary key in place: the table is rebuilt, existing rows keep their seq (and take it as their id).
CREATE TABLE sync_changes_sequenced (
  id INTEGER NOT NULL PRIMARY KEY,
  seq INTEGER NULL,
  type TEXT NOT NULL,
  object_id INTEGER NOT NULL,
  pet_id INTEGER NULL,
  user_id INTEGER NULL,
  action TEXT NOT NULL,
  created_at TEXT NOT NULL
);
INSERT INTO sync_changes_sequenced (id, seq, type, object_id, pet_id, user_id, action, created_at)
  SELECT seq, seq, type, object_id, pet_id, user_id, action, created_at FROM sync_changes ORDER BY seq;
DROP TABLE sync_changes;
ALTER TABLE sync_changes_sequenced RENAME TO sync_changes;
CREATE UNIQUE INDEX ix_sync_changes_seq ON sync_changes (seq);
CREATE INDEX ix_sync_changes_pet ON sync_changes (pet_id, seq);
CREATE INDEX ix_sync_changes_created ON sync_changes (created_at);
