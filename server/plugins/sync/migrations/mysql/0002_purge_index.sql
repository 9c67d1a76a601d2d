-- The purge (every 10 minutes, per worker) deletes the access spans that ended before the retained log:
-- DELETE ... WHERE revoked_seq <= ? read every sync_access row (one per membership ever granted) without it.
ALTER TABLE sync_access ADD KEY ix_sync_access_revoked (revoked_seq);
