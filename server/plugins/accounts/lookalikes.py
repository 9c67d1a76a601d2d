"""E-mail look-alikes: addresses that read the same to a person share one key, stored in users.email_skeleton under
a UNIQUE index, so a second account cannot impersonate the first with a fullwidth, Cyrillic or otherwise confusable
spelling of its address. The only module that touches ICU (PyICU): Unicode's own data, not a table of ours."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import icu  # type: ignore[import-untyped]  # PyICU ships no type information


@functools.cache
def _icu() -> tuple[Any, Any, Any]:
    """ICU's NFKC normalizer, the default-ignorable code points and a spoof checker (immutable, built once)."""
    return (icu.Normalizer2.getNFKCInstance(), icu.UnicodeSet("[:Default_Ignorable_Code_Point:]"),
            icu.SpoofChecker())


def skeleton(email: str) -> str:
    """The Unicode TS #39 skeleton of the address after NFKC (fullwidth and compatibility forms), lower case (as the
    service stores addresses: str.lower, so 'ß' stays apart from 'ss', as accents stay apart) and without
    default-ignorable characters; confusables.txt then maps every character to its prototype ('а' Cyrillic -> 'a',
    'm' -> 'rn', '1' -> 'l'), local part and domain alike."""
    nfkc, ignorable, checker = _icu()
    folded = nfkc.normalize(nfkc.normalize(email.strip()).lower())
    return str(checker.getSkeleton(0, "".join(c for c in folded if not ignorable.contains(c))))


def email_skeleton(email: str) -> str:
    """What users.email_skeleton stores: the SHA-256 (hex) of the skeleton; a fixed 64 ASCII characters keeps the
    unique index small and exact on both databases, and keeps a second copy of the address out of the table."""
    return hashlib.sha256(skeleton(email).encode()).hexdigest()
