"""SQLite's UNICODE_CI sort key (server/db/collation.py) against MariaDB's utf8mb4_unicode_ci itself: the same
texts come out in the same order, ties (equal under the collation) broken by id on both."""

from __future__ import annotations

import random

import pytest

from server.db.collation import unicode_ci_key
from tests.mariadb_server import connect_database, create_database

LETTERS = "aAáÁeéEÉoöøØßsStTłLæÆ  -_'.1209中文😀ñÑçÇıİ\u0301\u00ad\tZz\u00a0ǆΩж"


@pytest.mark.parametrize("seed", [1, 2])
def test_the_sort_key_orders_texts_exactly_as_mariadb_utf8mb4_unicode_ci(mysql_server_url, seed):
    rng = random.Random(seed)
    alphabet = LETTERS if seed == 1 else "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(300)) + "  \t"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(3000)]
    url = create_database(mysql_server_url, "pet_api_collation")
    conn = connect_database(url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE texts (id INT PRIMARY KEY, text VARCHAR(64) NOT NULL)"
                        " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci")
            cur.executemany("INSERT INTO texts (id, text) VALUES (%s, %s)", list(enumerate(texts)))
            cur.execute("SELECT id FROM texts ORDER BY text, id")
            mariadb = [row[0] for row in cur.fetchall()]
    finally:
        conn.close()
    ours = sorted(range(len(texts)), key=lambda i: (unicode_ci_key(texts[i]), i))
    assert [texts[i] for i in ours] == [texts[i] for i in mariadb]
    assert ours == mariadb
    assert unicode_ci_key(None) is None
