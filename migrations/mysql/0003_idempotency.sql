-- Idempotency-Key: the first answer to a POST, stored in the transaction of its effect (server/idempotency.py).
-- scope: the caller's user id, or 'anon' for registration; fingerprint: sha256 (hex) of method, path and body;
-- body: the JSON answer (UTF-8 text, so it comes back byte for byte; aiomysql 0.3.2 cannot send bytes parameters).
-- status 0 marks a reservation whose transaction has not committed (never visible to another session).
CREATE TABLE idempotency_keys (
  scope VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  fingerprint CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  status SMALLINT NOT NULL,
  headers VARCHAR(2000) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  body MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  created_at DATETIME(6) NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  PRIMARY KEY (scope, idem_key),
  KEY ix_idempotency_keys_expires (expires_at_ms)
) ENGINE=InnoDB;
