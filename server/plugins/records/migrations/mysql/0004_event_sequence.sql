-- The pet's version when the record was created (audit records2 F1): the record's calendar event counts only the
-- pet's revisions made after it, so a new event's SEQUENCE is 0 (RFC 5545 3.8.7.4) however often the pet was
-- renamed before. A record written before this migration, or by the release before it during an upgrade, counts
-- from 1 (every revision of its pet, as it did): an event a client already holds keeps its SEQUENCE, never lower.
ALTER TABLE records ADD COLUMN pet_version_at_creation INT NOT NULL DEFAULT 1;
