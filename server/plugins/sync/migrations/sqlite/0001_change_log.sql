-- The change log of issue 15 (see the mysql file for why seq comes from sync_counter).
CREATE TABLE sync_counter (
  name TEXT NOT NULL PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO sync_counter (name, value) VALUES ('seq', 0), ('purged_through', 0);
CREATE TABLE sync_changes (
  seq INTEGER NOT NULL PRIMARY KEY,
  type TEXT NOT NULL,
  object_id INTEGER NOT NULL,
  pet_id INTEGER NULL,
  user_id INTEGER NULL,
  action TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX ix_sync_changes_pet ON sync_changes (pet_id, seq);
CREATE INDEX ix_sync_changes_created ON sync_changes (created_at);
CREATE TABLE sync_access (
  pet_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  granted_seq INTEGER NOT NULL,
  revoked_seq INTEGER NULL,
  PRIMARY KEY (pet_id, user_id, granted_seq)
);
CREATE INDEX ix_sync_access_user ON sync_access (user_id, revoked_seq);
INSERT INTO sync_access (pet_id, user_id, granted_seq) SELECT pet_id, user_id, 0 FROM pet_members;
