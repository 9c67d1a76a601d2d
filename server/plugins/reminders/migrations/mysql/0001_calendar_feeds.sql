-- A user's calendar feed (issue 14): at most one per user. Only the SHA-256 of its token is kept: the token is the
-- feed URL's only credential, and a copy of this table must not let anyone read the feeds.
CREATE TABLE calendar_feeds (
  user_id BIGINT NOT NULL PRIMARY KEY,
  token_hash CHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_calendar_feeds_token (token_hash),
  CONSTRAINT fk_calendar_feeds_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
