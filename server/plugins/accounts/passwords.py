"""The password policy (ASVS 5.0 V6.2): at least 8 characters, up to 256 (any character, no composition
rules), and not one of the most common passwords of the list shipped in data/ (see data/README.md)."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

COMMON_LIST = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"
MIN_LENGTH, MAX_LENGTH = 8, 256


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower case (read once: it is data of the package, not state)."""
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def not_common(password: str) -> str:
    """The password, or ValueError naming the reason (compared as the list is: lower case, trimmed)."""
    if password.strip().lower() in common_passwords():
        raise ValueError(f"is one of the {len(common_passwords()):,} most common passwords; choose another")
    return password
