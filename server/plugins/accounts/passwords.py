"""The password policy (ASVS 5.0 V6.2): at least 8 characters, up to 256 (any character, no composition
rules), not one of the common or breached passwords of the two lists shipped in data/ (see data/README.md), and
no context-specific word (6.2.11): the service's name or the account's e-mail name, the name it signs in with
(NIST SP 800-63B's "username"; the nickname is a display name, and the owners' own clients register with one
inside the password)."""

from __future__ import annotations

import functools
import gzip
import json
import re
from pathlib import Path

from server.errors import InvalidParameter

DATA = Path(__file__).resolve().parent / "data"
COMMON_LIST = DATA / "common-passwords.txt.gz"  # Django's 20k most common (one a line)
BREACHED_LIST = DATA / "breached-passwords.json.gz"  # zxcvbn-ts: frequent in Xato's 10 million leaked (JSON array)
MIN_LENGTH, MAX_LENGTH = 8, 256
SERVICE_WORDS = frozenset({"petapi"})  # "pet-api", "Pet API", "petapi": compared without separators or case
MIN_WORD = 4  # shorter parts of a name ("al", "bo") are in too many good passwords to refuse them
CONTEXT_MESSAGE = "must not contain the service's name or your e-mail's name"
_SEPARATORS = re.compile(r"[\W_]+")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped lists together, lower case and trimmed (read once: data of the package, not state)."""
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as lines:
        common = {line.strip() for line in lines if line.strip()}
    with gzip.open(BREACHED_LIST, "rt", encoding="utf-8") as text:
        breached = {str(word).strip().lower() for word in json.load(text) if str(word).strip()}
    return frozenset(common | breached)


def not_common(password: str) -> str:
    """The password, or ValueError naming the reason (compared as the list is: lower case, trimmed)."""
    if password.strip().lower() in common_passwords():
        raise ValueError(f"is one of the {len(common_passwords()):,} most common or breached passwords; "
                         "choose another")
    if any(word in _compact(password) for word in SERVICE_WORDS):
        raise ValueError(CONTEXT_MESSAGE)
    return password


def _compact(text: str) -> str:
    return _SEPARATORS.sub("", text.casefold())


def context_words(*, email: str) -> frozenset[str]:
    """The words a password of this account may not contain: the service's name and the e-mail's local part
    (whole and each part of it), ignoring case and separators."""
    local = email.rsplit("@", 1)[0]
    words = {_compact(local), *_SEPARATORS.split(local.casefold())}
    return SERVICE_WORDS | {word for word in words if len(word) >= MIN_WORD}


def check_context(password: str, *, email: str) -> None:
    """InvalidParameter (400/1001, naming `password`) when the password contains one of the account's words."""
    compact = _compact(password)
    if any(word in compact for word in context_words(email=email)):
        raise InvalidParameter(errors=[{"field": "password", "message": CONTEXT_MESSAGE}])
