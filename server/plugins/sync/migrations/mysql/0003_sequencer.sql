-- The sequencer (issue 15): a writer only inserts its log row (an auto-increment id, seq NULL); the sequencer numbers
-- committed rows densely in id order in its own short transaction, under the 'seq' counter row's lock. Writers no
-- longer serialize on that row. Existing rows keep their seq (and get ids in seq order). The unique key on seq serves
-- the readers (seq > cursor, in seq order) and the sequencer's read of unnumbered rows (seq IS NULL, in id order:
-- InnoDB's secondary keys end with the primary key).
ALTER TABLE sync_changes DROP PRIMARY KEY,
  ADD COLUMN id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY FIRST,
  MODIFY seq BIGINT NULL,
  ADD UNIQUE KEY ix_sync_changes_seq (seq);
