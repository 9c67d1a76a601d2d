-- A pet's records list newest date first, optionally of one kind (as on MariaDB): indexes in the list's order.
CREATE INDEX ix_records_pet_date ON records (pet_id, date, id);
CREATE INDEX ix_records_pet_kind_date ON records (pet_id, kind, date, id);
