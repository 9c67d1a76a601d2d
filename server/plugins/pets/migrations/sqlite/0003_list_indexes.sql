-- The orders and filters of GET /v1/pets for a caller who sees every pet (pets:admin), as on MariaDB; names
-- sort with NOCASE there (dialect.nocase), so their indexes do too.
CREATE INDEX ix_pets_name ON pets (name COLLATE NOCASE, id);
CREATE INDEX ix_pets_created ON pets (created_at, id);
CREATE INDEX ix_pets_species ON pets (species, id);
CREATE INDEX ix_pets_species_name ON pets (species, name COLLATE NOCASE, id);
CREATE INDEX ix_pets_species_created ON pets (species, created_at, id);
CREATE INDEX ix_pets_status ON pets (status, id);
CREATE INDEX ix_pets_status_name ON pets (status, name COLLATE NOCASE, id);
CREATE INDEX ix_pets_status_created ON pets (status, created_at, id);
CREATE INDEX ix_pet_members_user_pet ON pet_members (user_id, pet_id);
