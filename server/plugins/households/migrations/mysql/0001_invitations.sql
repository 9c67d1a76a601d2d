-- Invitations to share a pet: addressed to an e-mail (normalized to lower case, as accounts stores it), so an
-- address that registers later finds them. The e-mail compares byte for byte (utf8mb4_bin): the tables' usual
-- collation would let 'jose@...' see an invitation sent to 'josé@...'.
CREATE TABLE invitations (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  pet_id BIGINT NOT NULL,
  email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  role VARCHAR(16) NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending',
  invited_by BIGINT NULL,
  created_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  answered_at DATETIME(6) NULL,
  KEY ix_invitations_pet (pet_id, status, id),
  KEY ix_invitations_email (email, status, expires_at),
  CONSTRAINT fk_invitations_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE,
  CONSTRAINT fk_invitations_inviter FOREIGN KEY (invited_by) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
