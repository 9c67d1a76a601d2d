"""Whole-suite secrets check (a pytest plugin): every log record of the test session goes to one file;
every token the suite's in-process apps issue and every password they hash or verify is remembered; at
the end none of them, nor an Authorization header, may appear in that file."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.auth import IssuedToken, TokenSigner
from server.logs import JSONFormatter, guard_secrets
from server.passwords import Passwords

FORBIDDEN = re.compile(r"authorization|bearer\s+\S", re.I)


@pytest.fixture(scope="session", autouse=True)
def no_secrets_in_the_suites_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the session when a token, a password or an Authorization header reached the logs."""
    log_path = tmp_path_factory.mktemp("logs") / "suite.jsonl"
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    guard_secrets()  # as configure_logging does for the real server
    tokens: set[str] = set()
    passwords: set[str] = set()
    patch = pytest.MonkeyPatch()
    issue, hash_, verify = TokenSigner.issue, Passwords.hash, Passwords.verify

    def remembering_issue(self: TokenSigner, *args: Any, **kwargs: Any) -> IssuedToken:
        issued = issue(self, *args, **kwargs)
        tokens.add(issued.token)
        return issued

    async def remembering_hash(self: Passwords, password: str) -> str:
        passwords.add(password)
        return await hash_(self, password)

    async def remembering_verify(self: Passwords, stored: str, password: str) -> bool:
        passwords.add(password)
        return await verify(self, stored, password)

    patch.setattr(TokenSigner, "issue", remembering_issue)
    patch.setattr(Passwords, "hash", remembering_hash)
    patch.setattr(Passwords, "verify", remembering_verify)
    try:
        yield
    finally:
        patch.undo()
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
    leaks = _leaks(log_path, tokens, {p for p in passwords if len(p) >= 8})
    assert not leaks, f"secrets in the suite's logs ({log_path}): {leaks[:5]}"


TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{16,}")


def _leaks(path: Path, tokens: set[str], passwords: set[str]) -> list[str]:
    secret = re.compile("|".join(re.escape(p) for p in sorted(passwords, key=len, reverse=True))) if passwords \
        else None
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if FORBIDDEN.search(line):
            found.append(f"line {number}: Authorization header")
        if any(candidate in tokens for candidate in TOKEN_SHAPE.findall(line)):
            found.append(f"line {number}: token")
        if secret is not None and secret.search(line):
            found.append(f"line {number}: password")
    return found
