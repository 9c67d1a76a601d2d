"""Database URLs, parsed on their own so the profile can check one without loading the database layer."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_PORT = 3306
TLS_MODES = ("off", "required", "verify")
TLS_FILES = {"ssl_ca": "ca", "ssl_cert": "cert", "ssl_key": "key"}
# URL errors never show the user and password part; they say how to write a password that breaks the URL.
ENCODE_HINT = " (a password with / # ? or @ must be percent-encoded: %2F %23 %3F %40)"


@dataclass(frozen=True, slots=True)
class DatabaseTLS:
    """The ?ssl= options of a mysql:// URL: off (plain TCP), required (encrypted, the server is not
    authenticated: weaker), verify (certificate chain and host name checked against ssl_ca or the system CAs)."""

    mode: str = "off"
    ca: str | None = None
    cert: str | None = None  # client certificate (and key, unless ssl_key names another file)
    key: str | None = None

    def context(self) -> ssl.SSLContext | None:
        """The client's SSLContext (None when off); OSError or ssl.SSLError when a named file cannot be loaded."""
        if self.mode == "off":
            return None
        context = ssl.create_default_context(cafile=self.ca if self.mode == "verify" else None)
        if self.mode == "required":
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        return context


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
    tls: DatabaseTLS = field(default_factory=DatabaseTLS)

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
        raise ValueError("database URL: empty host in the host list")
    if (port and not port.isdigit()) or not 0 < (number := int(port) if port else DEFAULT_PORT) < 65536:
        # the port's text is not shown: in a URL cut short by a password's '/', '#' or '?' it is the password
        raise ValueError(f"database URL: bad port for host {host!r}: not a number from 1 to 65535{ENCODE_HINT}")
    return host, number


def _tls(query: str) -> DatabaseTLS:
    """?ssl=off|required|verify&ssl_ca=&ssl_cert=&ssl_key= (paths); errors name the option, never a value."""
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "ssl" and name not in TLS_FILES:
            raise ValueError(f"database URL: unknown option {name!r} (known: ssl, {', '.join(TLS_FILES)})")
        if name in options:
            raise ValueError(f"database URL: option {name!r} is given twice")
        if not value:
            raise ValueError(f"database URL: option {name!r} is empty")
        options[name] = value
    mode = options.pop("ssl", "off")
    if mode not in TLS_MODES:
        raise ValueError(f"database URL: option 'ssl' must be one of {', '.join(TLS_MODES)}")
    if mode == "off" and options:
        raise ValueError(f"database URL: option {next(iter(options))!r} needs ssl=verify or ssl=required")
    if mode == "required" and "ssl_ca" in options:
        raise ValueError("database URL: option 'ssl_ca' needs ssl=verify (ssl=required checks no certificate)")
    if "ssl_key" in options and "ssl_cert" not in options:
        raise ValueError("database URL: option 'ssl_key' needs ssl_cert")
    return DatabaseTLS(mode, **{TLS_FILES[name]: value for name, value in options.items()})


def parse_url(url: str) -> DatabaseURL:
    """Split mysql://user:pass@host:port[,host2:port2...]/db[?ssl=verify&ssl_ca=...] or sqlite:///path (relative) / sqlite:////abs/path."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        return DatabaseURL("sqlite", "", "", "", 0, "", unquote(url.split("://", 1)[1][1:]) or ":memory:")
    if scheme not in ("mysql", "mariadb"):
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}: use mysql:// or sqlite:///")
    if "@" in url.split("://", 1)[-1][len(parts.netloc):]:
        raise ValueError("database URL: an '@' follows the host: a '/', '#' or '?' cut the user and password part "
                         f"short{ENCODE_HINT}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    hosts = tuple(_host_port(item) for item in hostlist.split(",")) if hostlist else (("127.0.0.1", DEFAULT_PORT),)
    if len(set(hosts)) != len(hosts):
        raise ValueError("database URL: a host is listed twice")
    (host, port), *_ = hosts
    return DatabaseURL("mysql", unquote(user or "root"), unquote(password), host, port, parts.path.lstrip("/"), "",
                       hosts, _tls(parts.query))
