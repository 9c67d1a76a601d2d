"""E-mail look-alikes: addresses that read the same to a person share one key, stored in users.email_skeleton under
a UNIQUE index, so a second account cannot impersonate the first with a fullwidth, Cyrillic or otherwise confusable
spelling of its address. The only module that touches ICU (PyICU): Unicode's own data, not a table of ours."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import icu  # type: ignore[import-untyped]  # PyICU ships no type information


@functools.cache
def _icu() -> tuple[Any, Any]:
    """ICU's NFKC_Casefold normalizer and a spoof checker (both immutable, built once per process)."""
    return icu.Normalizer2.getNFKCCasefoldInstance(), icu.SpoofChecker()


def skeleton(email: str) -> str:
    """The Unicode TS #39 skeleton of the address's NFKC_Casefold form: fullwidth letters, compatibility forms
    and case fold first (NFKC_Casefold also drops default-ignorable characters), then confusables.txt maps every
    character to its prototype ('а' Cyrillic -> 'a', 'ｍ' -> 'm' -> 'rn', '1' -> 'l'), local part and domain alike."""
    normalizer, checker = _icu()
    return str(checker.getSkeleton(0, normalizer.normalize(email.strip())))


def email_skeleton(email: str) -> str:
    """What users.email_skeleton stores: the SHA-256 (hex) of the skeleton; a fixed 64 ASCII characters keeps the
    unique index small and exact on both databases, and keeps a second copy of the address out of the table."""
    return hashlib.sha256(skeleton(email).encode()).hexdigest()
