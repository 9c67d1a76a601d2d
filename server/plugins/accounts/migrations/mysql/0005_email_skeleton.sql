-- Look-alike e-mails (issue 19): users.email_skeleton holds the SHA-256 of the address's Unicode TS #39 skeleton
-- (server/plugins/accounts/lookalikes.py), UNIQUE so that 'ｂоb@example.com' cannot join beside 'bob@example.com'.
-- NULL until the accounts plugin fills it at start (the skeleton needs ICU, not SQL), and for an account that is a
-- look-alike of an older one registered before this rule (kept, reported at each start: docs/security.md).
ALTER TABLE users ADD COLUMN email_skeleton CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD UNIQUE KEY ux_users_email_skeleton (email_skeleton);
