-- Due dates (issue 14): the next due date of a record (the next vaccination or dose) and when it was done, and the
-- record's version for If-Match. Every new column is nullable or has a default, so the release before this one
-- keeps inserting records; a record it wrote has no updated_at, which reads as its created_at.
ALTER TABLE records ADD COLUMN due_date TEXT NULL;
ALTER TABLE records ADD COLUMN completed_at TEXT NULL;
ALTER TABLE records ADD COLUMN updated_at TEXT NULL;
ALTER TABLE records ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
-- Reminders look up open due items only (their query repeats this condition): a partial index holds just those.
CREATE INDEX ix_records_pet_due ON records (pet_id, due_date) WHERE due_date IS NOT NULL AND completed_at IS NULL;
