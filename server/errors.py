"""The error contract: one class per error code, data only. Behaviour lives in BaseHandler.write_error."""

from __future__ import annotations

from typing import Any, ClassVar


class APIError(Exception):
    """Base of every error the API answers with; subclasses only carry data."""

    status: int = 500  # a class attribute; only HTTPFailure (1007) sets one per instance
    # Set by a class whose status varies (HTTPFailure): every status it is answered with, `status` its default.
    statuses: ClassVar[tuple[int, ...]] = ()
    code: ClassVar[int] = 999
    message: ClassVar[str] = "server error"
    message_zh: ClassVar[str] = "服务器错误"

    def __init__(self, detail: str | None = None, *, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None, status: int | None = None) -> None:
        super().__init__(detail or self.message)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        if status is not None:
            self.status = status

    def localized(self, lang: str) -> str:
        """The message in 'en' or 'zh'; a specific detail wins, in Chinese when server/i18n.py has it (every one of
        the server's has, tests/test_i18n.py); a plugin's detail without an entry gives way to its code's Chinese
        (`message_zh`: a plugin cannot add to the table, and its Chinese users read its generic message)."""
        if lang == "zh":
            from server.i18n import chinese

            return (chinese(self.detail) if self.detail else None) or self.message_zh
        return self.detail or self.message


class ServerError(APIError):
    status, code, message, message_zh = 500, 999, "server error", "服务器错误"


class InvalidParameter(APIError):
    status, code, message, message_zh = 400, 1001, "invalid parameter", "参数错误"


class NotFound(APIError):
    status, code, message, message_zh = 404, 1002, "the resource is not found", "资源不存在"


class AuthFailed(APIError):
    status, code, message, message_zh = 401, 1003, "authorization failed", "认证失败"


class Forbidden(APIError):
    status, code, message, message_zh = 403, 1004, "forbidden", "没有权限"


class Conflict(APIError):
    status, code, message, message_zh = 409, 1005, "conflict", "资源冲突"


class TooManyRequests(APIError):
    status, code, message, message_zh = 429, 1006, "too many requests", "请求过于频繁"


class HTTPFailure(APIError):
    """Any other HTTP error (unknown route, wrong method, body too large, ...); keeps the real status."""

    status, code, message, message_zh = 404, 1007, "http error", "HTTP 错误"
    # unknown route, wrong method, body too large, unsupported media type, header block too large
    statuses = (404, 405, 413, 415, 431)


class ServiceUnavailable(APIError):
    status, code, message, message_zh = 503, 1008, "service unavailable", "服务暂不可用"


class PreconditionFailed(APIError):
    status, code, message, message_zh = 412, 1009, "precondition failed", "资源已被修改"


class IdempotencyInProgress(APIError):
    status, code, message, message_zh = 409, 1010, "idempotent request in progress", "相同幂等键的请求正在处理中"


class IdempotencyKeyReused(APIError):
    status, code, message, message_zh = (422, 1011, "Idempotency-Key reused with a different request",
                                         "幂等键已用于另一个请求")


class SyncCursorExpired(APIError):
    status, code, message, message_zh = (410, 1012, "sync cursor expired; sync again from the start",
                                         "同步游标已过期，请从头同步")


class TokenInvalid(APIError):
    status, code, message, message_zh = 401, 10031, "token is invalid", "令牌无效"


class TokenExpired(APIError):
    status, code, message, message_zh = 401, 10032, "token is expired", "令牌已过期"


class TokenRevoked(APIError):
    status, code, message, message_zh = 401, 10033, "token is revoked", "令牌已撤销"


class SecondFactorRequired(APIError):
    """The password was right, but the account has two-factor authentication on and no valid code came with it
    (none, a wrong one, or one already used)."""

    status, code, message, message_zh = 401, 10034, "second factor required or invalid", "需要第二重验证，或验证码无效"


ERROR_CLASSES: tuple[type[APIError], ...] = (
    ServerError, InvalidParameter, NotFound, AuthFailed, Forbidden, Conflict, TooManyRequests,
    HTTPFailure, ServiceUnavailable, PreconditionFailed, IdempotencyInProgress, IdempotencyKeyReused,
    SyncCursorExpired, TokenInvalid, TokenExpired, TokenRevoked, SecondFactorRequired,
)


class ErrorCatalog:
    """The error classes one application answers with: the core's and its enabled plugins'."""

    def __init__(self, classes: tuple[type[APIError], ...] = ERROR_CLASSES) -> None:
        self.classes = classes

    def codes_for(self, status: int) -> tuple[int, ...]:
        """The error codes an answer with this HTTP status can carry: those of the classes with that status,
        else HTTPFailure's (it keeps whatever other status it is given)."""
        return tuple(cls.code for cls in self.classes if cls.status == status) or (HTTPFailure.code,)

    def entries(self, lang: str = "en") -> list[dict[str, Any]]:
        """The list of error codes for GET /v1/errors, generated from the classes: `http_status` the status each
        comes with; a code whose status varies (1007) keeps its usual one there (404, so the field keeps its type
        and meaning) and lists every status in `http_statuses`, a field only it has (the others are unchanged)."""
        return [{"error_code": cls.code, "http_status": cls.status,
                 "message": cls.message_zh if lang == "zh" else cls.message,
                 **({"http_statuses": list(cls.statuses)} if cls.statuses else {})} for cls in self.classes]
