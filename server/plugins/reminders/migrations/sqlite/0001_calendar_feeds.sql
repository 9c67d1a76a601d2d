-- A user's calendar feed (issue 14): at most one per user. Only the SHA-256 of its token is kept: the token is the
-- feed URL's only credential, and a copy of this table must not let anyone read the feeds.
CREATE TABLE calendar_feeds (
  user_id INTEGER NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);
