"""MariaDB's utf8mb4_unicode_ci order for SQLite: UNICODE_CI(text) is a sort key (MariaDB's primary weights, as
bytes) whose byte order is MariaDB's order of the texts, so a list sorted by name comes out the same on both
databases: case and accents ignored (Émile = emile, ß = ss), letters after digits after punctuation, ties
left to the next sort key. The weights of the characters that have their own come from MariaDB itself
(scripts/unicode_ci_table.py wrote data/unicode_ci.bin); the others have UCA's implicit weights."""

from __future__ import annotations

import zlib
from functools import cache
from pathlib import Path

TABLE = Path(__file__).parent / "data" / "unicode_ci.bin"
SPACE = 0x0209  # the primary weight of a space (and of the other characters MariaDB weighs as one)
BEYOND_BMP = b"\xff\xfd"  # MariaDB 10's unicode_ci gives every character past U+FFFF this one weight


def implicit(cp: int) -> bytes:
    """UCA's implicit weights of a character the table does not list (CJK ideographs, unassigned)."""
    if 0x4E00 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF:
        base = 0xFB40
    elif 0x3400 <= cp <= 0x4DBF:
        base = 0xFB80
    else:
        base = 0xFBC0
    return (base + (cp >> 15)).to_bytes(2, "big") + ((cp & 0x7FFF) | 0x8000).to_bytes(2, "big")


@cache
def _weights() -> list[bytes]:
    table = [implicit(cp) for cp in range(0x10000)]
    raw = zlib.decompress(TABLE.read_bytes())
    at = 0
    while at < len(raw):
        cp, count = int.from_bytes(raw[at:at + 2], "big"), raw[at + 2]
        table[cp] = raw[at + 3:at + 3 + 2 * count]
        at += 3 + 2 * count
    return table


def unicode_ci_key(text: str | None) -> bytes | None:
    """The sort key of a text under utf8mb4_unicode_ci (None stays None, as SQL's NULL).

    MariaDB compares the texts' weights as if the shorter were padded with spaces (PAD SPACE), so trailing spaces
    do not count and a text going on with spaces then a character lighter than a space (a tab) sorts before
    its prefix. The key encodes that: each run of k spaces and the weight w after it becomes one token, ordered
    as the padded comparison orders them, and the end of the text the token of endless spaces."""
    if text is None:
        return None
    table = _weights()
    key = bytearray()
    spaces = 0
    for o in map(ord, text):
        weights = table[o] if o < 0x10000 else BEYOND_BMP
        for at in range(0, len(weights), 2):
            weight = int.from_bytes(weights[at:at + 2], "big")
            if weight == SPACE:
                spaces += 1
                continue
            run = min(spaces, 0xFFFF)
            if weight < SPACE:  # lighter than the padding: more spaces before it, heavier
                key += b"\x00" + run.to_bytes(2, "big")
            else:  # heavier than the padding: more spaces before it, lighter
                key += b"\x02" + (0xFFFF - run).to_bytes(2, "big")
            key += weights[at:at + 2]
            spaces = 0
    key += b"\x01"  # the end: spaces for ever
    return bytes(key)
