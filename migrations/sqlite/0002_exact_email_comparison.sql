-- SQLite twin of mysql/0002: its NOCASE collation folds ASCII case only, accents were always distinct.
-- Nothing to change; the file keeps both dialects on the same version numbers.
SELECT 1;
