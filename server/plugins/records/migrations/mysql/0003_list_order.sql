-- A pet's records list newest date first (records.services.BY_DATE: date DESC, id DESC), optionally of one kind:
-- with only (pet_id, id) MariaDB read and sorted all of a pet's records for each page (a pet with 5,000 records:
-- a filesort of 5,000 rows per request). These indexes hold the list's order, so a page reads its 21 rows.
ALTER TABLE records
  ADD KEY ix_records_pet_date (pet_id, date, id),
  ADD KEY ix_records_pet_kind_date (pet_id, kind, date, id);
