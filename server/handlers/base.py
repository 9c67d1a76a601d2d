"""BaseHandler: the one place that writes envelopes and errors, CORS, request ids and body limits."""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import random
import re
import time
import traceback
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import orjson
import tornado
import tornado.log
import tornado.web
from pydantic import BaseModel
from tornado import httputil
from tornado.http1connection import HTTP1Connection

from server.auth import Principal, bearer_token
from server.errors import APIError, HTTPFailure, InvalidParameter, NotFound, PreconditionFailed, ServerError
from server.i18n import localize_errors
from server.internals import close_after_response, reset_response, response_header
from server.preconditions import if_match_holds
from server.schemas.common import MAX_ID
from server.services import DUMPS_OPTIONS
from server.validation import parse_json, validate

if TYPE_CHECKING:
    from server.app import PetAPI
    from server.db import Executor

M = TypeVar("M", bound=BaseModel)
JSON_TYPE = "application/json; charset=UTF-8"
# On every answer, errors included (ASVS 3.4.4, 3.4.6 and the OWASP REST sheet): no type sniffing, never framed,
# nothing loaded on the answer's behalf. A handler serving a page or an image sets its own stricter policy after.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
                    "Referrer-Policy": "no-referrer"}
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
CORS_HEADERS = ("Authorization, Content-Type, If-Match, If-None-Match, Accept-Language, X-Request-ID,"
                " Idempotency-Key")
EXPOSED_HEADERS = "X-Request-ID, ETag, Location, Retry-After, Idempotent-Replayed"


class ResponseHeaders:
    """The headers every response starts with, in order: tornado's Server, our Content-Type and security headers,
    and the Date, formatted once a second instead of once a response (one per application)."""

    __slots__ = ("_first", "_second", "_headers")

    def __init__(self) -> None:
        # Through HTTPHeaders once: names in its Http-Header-Case, values checked as set_header would.
        self._first = list(httputil.HTTPHeaders({"Server": f"TornadoServer/{tornado.version}",
                                                 "Content-Type": JSON_TYPE, **SECURITY_HEADERS}).get_all())
        self._second = -1
        self._headers: list[tuple[str, str]] = []

    def current(self) -> list[tuple[str, str]]:
        """(name, value) pairs for a response starting now."""
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._headers = [*self._first[:2], ("Date", httputil.format_timestamp(second)), *self._first[2:]]
        return self._headers


def header(request: httputil.HTTPServerRequest, name: str) -> str | None:
    """A request header or None; for headers usually absent, cheaper than headers.get, which raises and
    catches a KeyError for each one missing."""
    headers = request.headers
    return headers[name] if name in headers else None  # noqa: SIM401 - see the docstring


def client_address(ip: str | None) -> str | None:
    """The client's address as the API uses it: an IPv4 client of a dual-stack socket (systemd's ListenStream=8000
    is [::]) arrives as ::ffff:a.b.c.d, and is a.b.c.d here, as on an IPv4 socket (loopback, throttling keys)."""
    if ip and ":" in ip:
        try:
            mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        except ValueError:
            return ip
        if mapped is not None:
            return str(mapped)
    return ip


def id_param(raw: str) -> int:
    """A path id; an id no row can have (over BIGINT) is simply not found, and so is one spelt with leading
    zeros (/v1/pets/007 does not alias /v1/pets/7: one resource, one URL)."""
    value = int(raw)
    if value > MAX_ID or (raw[0] == "0" and raw != "0"):
        raise NotFound()
    return value


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def _query_name(key: str) -> str:
    """A query parameter's name as the client wrote it (tornado decodes names as Latin-1), or "query" when the name
    itself is not UTF-8."""
    raw = key.encode("latin-1")
    return raw.decode() if _is_utf8(raw) else "query"


def dumps(value: Any) -> bytes:
    """JSON bytes for a response (dataclasses, dates and naive-UTC datetimes included)."""
    return orjson.dumps(value, option=DUMPS_OPTIONS)


def content_tag(body: bytes) -> str:
    """An ETag made from a response body: the same data gives the same tag on every worker and instance."""
    return '"h' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def preferred_language(header: str | None) -> str:
    """'zh' when Accept-Language weighs Chinese more than English, else 'en' (a tie too; RFC 9110 12.5.4). A
    language weighs what its highest-weighted range says (zh, zh-CN and zh-TW all name Chinese), else what `*`
    says: it stands for the languages no other range names (RFC 4647 3.3.1). A weight of 0 (or one that is not a
    number from 0 to 1) means "not acceptable" (RFC 9110 12.4.2): such a language is never chosen."""
    if not header or ("zh" not in header.lower() and "*" not in header):
        return "en"
    weights: dict[str, float] = {}
    for part in header.split(","):
        tag, *params = part.split(";")
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                q = q if 0.0 <= q <= 1.0 else 0.0
        lang = tag.strip().lower().split("-", 1)[0]
        if lang in ("zh", "en", "*"):
            weights[lang] = max(weights.get(lang, 0.0), q)
    anything = weights.get("*", 0.0)
    return "zh" if weights.get("zh", anything) > weights.get("en", anything) else "en"


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Every pet-api handler; bodies are streamed so an oversized one is refused before it is held."""

    application: PetAPI  # tornado types it as Application; ours carries config, db, tokens, ...
    route = "unmatched"
    secret = False  # the path holds a credential ({name:token}): logs and error bodies name the route instead
    methods_allowed: ClassVar[str] = ""  # for Allow and CORS preflight: set for each subclass when defined
    transaction: Executor | None = None  # the transaction the whole request runs in (an Idempotency-Key request)
    held: bytes | None = None  # the success body written inside that transaction, sent once it commits

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        base = tornado.web.RequestHandler
        if "get" in cls.__dict__ and "head" not in cls.__dict__:  # HEAD wherever GET (tornado drops the body)
            cls.head = cls.__dict__["get"]
        cls.methods_allowed = ", ".join(
            m for m in cls.SUPPORTED_METHODS
            if getattr(cls, m.lower()) is not getattr(base, m.lower()) or m == "OPTIONS")

    def initialize(self, route: str = "unmatched", secret: bool = False) -> None:
        self.request.remote_ip = client_address(self.request.remote_ip)
        self.route = route
        self.secret = secret
        self._chunks: list[bytes] = []
        self._received = 0
        self.body_too_large = False

    # ---- headers common to every response, errors included (send_error calls clear() again)
    def clear(self) -> None:
        reset_response(self, self.application.response_headers.current())
        self.set_default_headers()

    def set_default_headers(self) -> None:
        request_id = getattr(self, "request_id", None)
        if request_id is None:
            sent = header(self.request, "X-Request-ID")
            # 96 random bits from the process's generator (reseeded in every forked worker), not
            # os.urandom: an id needs uniqueness, not secrecy, and this spares a system call per request.
            request_id = sent if sent and REQUEST_ID_RE.match(sent) else f"{random.getrandbits(96):024x}"
            self.request_id = request_id
        self.set_header("X-Request-ID", request_id)
        origin, allowed = header(self.request, "Origin"), self.application.config.cors_allow_origins
        if allowed:  # with CORS on, every answer depends on Origin (a grant or none): caches must key on it
            self.set_header("Vary", "Origin")
        if origin:
            if "*" in allowed:
                self.set_header("Access-Control-Allow-Origin", "*")
            elif origin in allowed:
                self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Expose-Headers", EXPOSED_HEADERS)

    def vary(self, field: str) -> None:
        """Add a request header the answer depends on to Vary (RFC 9110 12.5.5), after those already named."""
        named = self._headers.get("Vary")
        self.set_header("Vary", f"{named}, {field}" if named else field)

    async def options(self, *args: Any, **kwargs: Any) -> None:
        """CORS preflight, and what the resource allows (RFC 9110 9.3.7: Allow, as a 405 says it)."""
        self.set_header("Allow", self.methods_allowed)
        self.set_header("Access-Control-Allow-Methods", self.methods_allowed)
        self.set_header("Access-Control-Allow-Headers", CORS_HEADERS)
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    # ---- request body
    def prepare(self) -> None:
        # An oversized body is not refused here: answering before it is read makes Tornado close the
        # connection mid-upload, and the client sees a reset instead of the 413. Its chunks are dropped
        # as they arrive and reading `body` answers 413 once the upload is over.
        length = header(self.request, "Content-Length")
        if length and length.isdigit() and int(length) > self.body_limit():
            self.body_too_large = True

    def body_limit(self) -> int:
        """The largest body this request may send: max_body_size (a handler taking uploads raises it)."""
        return self.application.config.max_body_size

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.body_limit():
            self.body_too_large = True
            self._chunks.clear()
        elif not self.body_too_large:
            self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        """The request body, or 413 when it grew over body_limit()."""
        return b"".join(self.body_pieces())

    def body_pieces(self) -> list[bytes]:
        """The request body in the pieces it arrived in (nothing joined or copied), or 413 as body."""
        if self.body_too_large:
            raise HTTPFailure("request body is too large", status=413)
        return self._chunks

    def require_json_type(self) -> None:
        """415 unless the body is labelled application/json or a +json type (RFC 6839: application/merge-patch+json,
        what a PATCH here is), its parameters aside. Not only a courtesy: a web page can send text/plain or a form
        to any origin without a preflight."""
        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")
                                                and len(ctype) > len("application/+json")):
            raise HTTPFailure("Content-Type must be application/json", status=415)

    def parse_body(self, model: type[M]) -> M:
        """The JSON body validated into model, or 400/415."""
        self.require_json_type()
        return validate(model, parse_json(self.body))

    def refuse_body(self) -> None:
        """For an operation that takes no body: one sent anyway is refused, not ignored while the operation runs
        (413 over the limit, 415 when not labelled JSON, as any body, 400 when not JSON; else 400 naming it), but
        for an empty JSON object, which says nothing (clients that always send a body send that)."""
        if any(self.body_pieces()):
            self.require_json_type()
            if parse_json(self.body) != {}:
                raise InvalidParameter("this operation takes no request body",
                                       errors=[{"field": "body", "message": "must be empty"}])

    def parse_query(self, model: type[M]) -> M:
        """The query string validated into model, or 400 naming the parameter (unknown, repeated or bad)."""
        arguments = self.request.query_arguments
        repeated = sorted(k for k, v in arguments.items() if len(v) > 1)
        if repeated:
            raise InvalidParameter(f"query parameter given more than once: {', '.join(repeated)}",
                                   errors=[{"field": k, "message": "given more than once"} for k in repeated])
        try:
            data = {k: v[0].decode() for k, v in arguments.items()}
        except UnicodeDecodeError:
            raise InvalidParameter("query string is not UTF-8", errors=[
                {"field": _query_name(k), "message": "must be UTF-8"} for k, v in arguments.items()
                if not _is_utf8(k.encode("latin-1")) or not _is_utf8(v[0])]) from None
        return validate(model, data)

    # ---- identity
    async def authenticate(self) -> Principal:
        """The verified, unrevoked caller, or 401."""
        principal = self.application.tokens.verify(bearer_token(self.request.headers.get("Authorization")))
        revocations = self.application.revocations
        if revocations.behind:
            await revocations.catch_up(self.application.db)
        revocations.check(principal)
        self.current_user = principal
        return principal

    @property
    def db(self) -> Executor:
        """Where the request's statements go: the request's transaction when it has one, else the pool."""
        return self.application.db if self.transaction is None else self.transaction

    @property
    def shown_path(self) -> str:
        """The path as logs and error bodies show it: the route template when the path holds a credential."""
        return self.route if self.secret else self.request.path

    # ---- responses
    def send(self, data: Any, status: int = 200, *, page: dict[str, Any] | None = None,
             etag: str | bool = False) -> None:
        """Write the success envelope. etag: the representation's tag (a string: a version, or a list's tag made from
        its page's data), or True for one made from the body itself (what a list sends by default: any change to a
        listed object or to the total changes it); a GET whose If-None-Match names it is answered 304 with no body,
        never encoded when the tag is a string."""
        body: dict[str, Any] = {"code": status, "data": data, "message": "ok"}
        if page is not None:
            body["page"] = page
        self.set_status(status)
        if self.transaction is not None:  # stored with the effect; the client learns of it after the commit
            self.held = dumps(body)
            return
        if isinstance(etag, str):  # known before the body: a 304 never encodes it
            self.set_header("ETag", etag)
            if not self._not_modified(status):
                self.finish(dumps(body))
            return
        raw = dumps(body)
        if etag or page is not None:
            self.set_header("ETag", content_tag(raw))
            if self._not_modified(status):
                return
        self.finish(raw)

    def _not_modified(self, status: int) -> bool:
        """Answer 304 (no body) when a GET's If-None-Match names the ETag set; whether it did."""
        if status == 200 and self.request.method in ("GET", "HEAD") and self.check_etag_header():
            self.set_status(304)
            self.finish()
            return True
        return False

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        error = self._as_api_error(status_code, exc)
        self.error_code = error.code
        lang = preferred_language(self.request.headers.get("Accept-Language"))
        body: dict[str, Any] = {"error_code": error.code, "message": self._message(error, lang),
                                "request": f"{self.request.method} {self.shown_path}"}
        if error.errors:
            body["errors"] = localize_errors(error.errors, lang)
        if self.application.config.debug and "exc_info" in kwargs and isinstance(error, ServerError):
            body["trace"] = "".join(traceback.format_exception(*kwargs["exc_info"]))
        self.set_status(error.status)
        self.vary("Accept-Language")  # the messages are in the caller's language: a cache must key on it
        for name, value in error.headers.items():
            self.set_header(name, value)
        if error.status == 405:
            self.set_header("Allow", self.methods_allowed)
            connection = self.request.connection
            if self.request.method not in self.SUPPORTED_METHODS and isinstance(connection, HTTP1Connection):
                # Refused by tornado before the body is read, so it ends the connection after this answer: say so.
                close_after_response(connection)
        elif error.status == 401:  # RFC 9110 11.6.1 and RFC 6750 3: the scheme, and why a presented token failed
            presented = header(self.request, "Authorization")
            self.set_header("WWW-Authenticate", 'Bearer realm="pet-api"' + (
                ', error="invalid_token"' if presented and presented[:7].lower() == "bearer " else ""))
        self.finish(dumps(body))

    def _as_api_error(self, status_code: int, exc: BaseException | None) -> APIError:
        if isinstance(exc, APIError):
            return exc
        if isinstance(exc, tornado.web.HTTPError) or exc is None:
            status = exc.status_code if isinstance(exc, tornado.web.HTTPError) else status_code
            if status == 400:
                return InvalidParameter(getattr(exc, "log_message", None))
            if status >= 500:
                return ServerError()
            return HTTPFailure(self._status_message(status), status=status)
        return ServerError()

    @staticmethod
    def _status_message(status: int) -> str:
        return {404: "no such route"}.get(status) or http.client.responses.get(status, "http error").lower()

    @staticmethod
    def _message(error: APIError, lang: str) -> str:
        return error.localized(lang)

    def compute_etag(self) -> str | None:
        """No automatic SHA1 ETag: only resources with a version send one."""
        return None

    def check_if_match(self, etag: str | None) -> None:
        """412 when the request's If-Match does not hold for this existing resource, whose tag is etag (None: it
        has none, so only '*' holds); for the operations that do not evaluate If-Match themselves (RFC 9110
        13.1.1: the method must not be performed)."""
        sent = header(self.request, "If-Match")
        if sent is not None and not if_match_holds(sent, etag):
            raise PreconditionFailed()

    def check_etag_header(self) -> bool:
        """A GET's preconditions, once its answer is known to be a 200 (tornado's finish() calls this for one
        without an ETag, send() and the raw answers for one with): If-Match first (RFC 9110 13.2.2), 412 unless it
        names the ETag; then tornado's If-None-Match check, skipped when the request has none (it would read the
        response's ETag and run a regex on every response to answer False)."""
        headers = self.request.headers
        if "If-Match" in headers and self.request.method in ("GET", "HEAD"):
            self.check_if_match(response_header(self, "ETag"))
        if "If-None-Match" not in headers:
            return False
        return super().check_etag_header()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, APIError | tornado.web.HTTPError):
            return  # an answered error, counted by the access log and metrics
        # Not tornado's line: it holds the URI with its query string (a careless client's ?access_token=...).
        tornado.log.app_log.error("uncaught exception", exc_info=(typ, value, tb), extra={
            "request_id": getattr(self, "request_id", None), "method": self.request.method, "path": self.shown_path})


class NotFoundHandler(BaseHandler):
    """default_handler_class: unknown routes answer 404/1007 in the contract's shape."""

    @property
    def shown_path(self) -> str:
        """A feed URL slightly changed matches no route but still holds its token: shown as the feed's template."""
        return self.application.secret_paths.shown(self.request.path)

    # Answered from the verb method, once the body (even an empty one) has been read and dropped: answered from
    # prepare, before it, tornado closes the keep-alive connection after the 404 without a "Connection: close", and
    # the client's next request on it is reset.
    async def get(self, *args: Any, **kwargs: Any) -> None:
        raise HTTPFailure("no such route", status=404)

    head = post = put = patch = delete = options = get


NotFoundHandler.methods_allowed = ""  # Allow on a 405 for a method tornado does not know: no route, no method
