-- The change log of issue 15. seq comes from the 'seq' row of sync_counter, incremented in the writer's transaction:
-- the row lock (or, across Galera nodes, certification) serializes the writers, so seq is dense and in commit order,
-- which auto-increment ids are not. 'purged_through' is the highest seq deleted by the retention purge: a cursor
-- below it has lost changes (410/1012).
CREATE TABLE sync_counter (
  name VARCHAR(32) NOT NULL PRIMARY KEY,
  value BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO sync_counter (name, value) VALUES ('seq', 0), ('purged_through', 0);
CREATE TABLE sync_changes (
  seq BIGINT NOT NULL PRIMARY KEY,
  type VARCHAR(32) NOT NULL,
  object_id BIGINT NOT NULL,
  pet_id BIGINT NULL,
  user_id BIGINT NULL,
  action VARCHAR(32) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  KEY ix_sync_changes_pet (pet_id, seq),
  KEY ix_sync_changes_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- Who could see a pet, and from when to when (in seq): a member removed, or every member of a deleted pet, must
-- still be told, after pet_members has lost the row.
CREATE TABLE sync_access (
  pet_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  granted_seq BIGINT NOT NULL,
  revoked_seq BIGINT NULL,
  PRIMARY KEY (pet_id, user_id, granted_seq),
  KEY ix_sync_access_user (user_id, revoked_seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO sync_access (pet_id, user_id, granted_seq) SELECT pet_id, user_id, 0 FROM pet_members;
