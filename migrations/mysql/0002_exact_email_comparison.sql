-- E-mails are stored lower-cased by the service, so they need no collation to fold case; with
-- utf8mb4_unicode_ci MariaDB also folded accents and treated every emoji alike, so zoe@ and zoë@
-- were one account (a login as one reached the other) and 🐶@ and 🐱@ collided.
ALTER TABLE users MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
