-- Invitations to share a pet: addressed to an e-mail (normalized to lower case, as accounts stores it), so an
-- address that registers later finds them.
CREATE TABLE invitations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pet_id INTEGER NOT NULL REFERENCES pets (id) ON DELETE CASCADE,
  email TEXT NOT NULL,
  role TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  invited_by INTEGER NULL REFERENCES users (id) ON DELETE SET NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  answered_at TEXT NULL
);
CREATE INDEX ix_invitations_pet ON invitations (pet_id, status, id);
CREATE INDEX ix_invitations_email ON invitations (email, status, expires_at);
