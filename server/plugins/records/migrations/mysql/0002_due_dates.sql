-- Due dates (issue 14): the next due date of a record (the next vaccination or dose) and when it was done, and the
-- record's version for If-Match. Every new column is nullable or has a default, so the release before this one
-- keeps inserting records; a record it wrote has no updated_at, which reads as its created_at.
ALTER TABLE records
  ADD COLUMN due_date DATE NULL,
  ADD COLUMN completed_at DATETIME(6) NULL,
  ADD COLUMN updated_at DATETIME(6) NULL,
  ADD COLUMN version INT NOT NULL DEFAULT 1,
  ADD KEY ix_records_pet_due (pet_id, due_date);
