"""Writes server/db/data/unicode_ci.bin, SQLite's copy of MariaDB's utf8mb4_unicode_ci ordering, from a MariaDB
server: the primary weights WEIGHT_STRING() gives each character of the Basic Multilingual Plane, kept where they
differ from the collation's implicit weights (server/db/collation.py computes those). MariaDB's unicode_ci has no
contractions, so a string's weights are its characters' weights in order.

    python3 scripts/unicode_ci_table.py mysql://root:@127.0.0.1:3306
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from server.db.collation import TABLE, implicit  # noqa: E402

CHUNK = 2000


def weights(url: str) -> dict[int, bytes]:
    parts = urlsplit(url)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or "root"),
                           password=unquote(parts.password or ""), charset="utf8mb4")
    code_points = [cp for cp in range(0x10000) if not 0xD800 <= cp <= 0xDFFF]
    found: dict[int, bytes] = {}
    with conn.cursor() as cur:
        for start in range(0, len(code_points), CHUNK):
            chunk = code_points[start:start + CHUNK]
            cur.execute("SELECT " + ", ".join(["HEX(WEIGHT_STRING(%s COLLATE utf8mb4_unicode_ci))"] * len(chunk)),
                        [chr(cp) for cp in chunk])
            row = cur.fetchone()
            assert row is not None
            found.update(zip(chunk, (bytes.fromhex(h) for h in row), strict=True))
    conn.close()
    return found


def main(url: str) -> None:
    table = {cp: w for cp, w in weights(url).items() if w != implicit(cp)}
    raw = b"".join(cp.to_bytes(2, "big") + bytes([len(w) // 2]) + w for cp, w in sorted(table.items()))
    TABLE.write_bytes(zlib.compress(raw, 9))
    print(f"{TABLE}: {len(table)} characters with their own weights")


if __name__ == "__main__":
    main(sys.argv[1])
