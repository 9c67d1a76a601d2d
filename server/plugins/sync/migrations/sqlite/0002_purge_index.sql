-- The purge deletes the access spans that ended before the retained log: an index on where they ended.
CREATE INDEX ix_sync_access_revoked ON sync_access (revoked_seq);
