"""Database URLs, parsed on their own so the profile can check one without loading the database layer."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    scheme: str
    user: str
    password: str
    host: str
    port: int
    database: str
    path: str


def parse_url(url: str) -> DatabaseURL:
    """Split mysql://user:pass@host:port/db or sqlite:///path (relative) / sqlite:////abs/path."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        return DatabaseURL("sqlite", "", "", "", 0, "", unquote(url.split("://", 1)[1][1:]) or ":memory:")
    if scheme not in ("mysql", "mariadb"):
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}: use mysql:// or sqlite:///")
    return DatabaseURL("mysql", unquote(parts.username or "root"), unquote(parts.password or ""),
                       parts.hostname or "127.0.0.1", parts.port or 3306, parts.path.lstrip("/"), "")
