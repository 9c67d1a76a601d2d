"""Database URLs, parsed on their own so the profile can check one without loading the database layer."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 3306


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    scheme: str
    user: str
    password: str
    host: str  # the first host of the list
    port: int
    database: str
    path: str
    hosts: tuple[tuple[str, int], ...] = ()  # every (host, port) in listed order; one for a plain URL

    def at(self, host: str, port: int) -> DatabaseURL:
        """The same URL aimed at one of its hosts only."""
        return replace(self, host=host, port=port, hosts=((host, port),))


def _host_port(item: str) -> tuple[str, int]:
    """'db1:3307' -> ('db1', 3307); '[::1]:3307' -> ('::1', 3307); the port defaults to 3306."""
    item = item.strip()
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host:
        raise ValueError(f"database URL: empty host in {item!r}")
    if port and not port.isdigit():
        raise ValueError(f"database URL: bad port in {item!r}")
    number = int(port) if port else DEFAULT_PORT
    if not 0 < number < 65536:
        raise ValueError(f"database URL: bad port in {item!r}")
    return host, number


def parse_url(url: str) -> DatabaseURL:
    """Split mysql://user:pass@host:port[,host2:port2...]/db or sqlite:///path (relative) / sqlite:////abs/path."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        return DatabaseURL("sqlite", "", "", "", 0, "", unquote(url.split("://", 1)[1][1:]) or ":memory:")
    if scheme not in ("mysql", "mariadb"):
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}: use mysql:// or sqlite:///")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    hosts = tuple(_host_port(item) for item in hostlist.split(",")) if hostlist else (("127.0.0.1", DEFAULT_PORT),)
    if len(set(hosts)) != len(hosts):
        raise ValueError("database URL: a host is listed twice")
    (host, port), *_ = hosts
    return DatabaseURL("mysql", unquote(user or "root"), unquote(password), host, port, parts.path.lstrip("/"), "",
                       hosts)
