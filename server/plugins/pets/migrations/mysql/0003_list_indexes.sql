-- The orders and filters of GET /v1/pets for a caller who sees every pet (pets:admin): without an index whose
-- order is the list's, MariaDB read and sorted every pet to return 20 (0.5-2.2 s at 200,000 pets). InnoDB
-- appends the primary key to each secondary index, so (name) orders by name then id, as the list does, and
-- (species) serves species=... in id order. A member's list starts from pet_members: (user_id, pet_id) holds
-- their pets in id order, so a page of a breeder's 2,000 pets reads 21 rows instead of sorting all 2,000
-- (ix_pet_members_user puts the role between). tests/db/test_explain.py fails when a plan stops using them.
ALTER TABLE pets
  ADD KEY ix_pets_name (name),
  ADD KEY ix_pets_created (created_at),
  ADD KEY ix_pets_species (species),
  ADD KEY ix_pets_species_name (species, name),
  ADD KEY ix_pets_species_created (species, created_at),
  ADD KEY ix_pets_status (status),
  ADD KEY ix_pets_status_name (status, name),
  ADD KEY ix_pets_status_created (status, created_at);
ALTER TABLE pet_members ADD KEY ix_pet_members_user_pet (user_id, pet_id);
