-- SQLite twin of mysql/0005_email_skeleton.sql (several NULLs may share a UNIQUE index on both).
ALTER TABLE users ADD COLUMN email_skeleton TEXT NULL;
CREATE UNIQUE INDEX ux_users_email_skeleton ON users (email_skeleton);
