-- The administrator guard (services/admins.py) reads every active administrator: an index on (role, disabled).
CREATE INDEX ix_users_role_disabled ON users (role, disabled);
