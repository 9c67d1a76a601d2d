-- The administrator guard (services/admins.py) writes and reads every active administrator on each role,
-- disabled-flag or deletion change: without an index on (role, disabled) both statements read every user.
ALTER TABLE users ADD KEY ix_users_role_disabled (role, disabled);
