"""Access tokens (itsdangerous, with scopes and a token id) and the scope decorator."""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from itsdangerous import BadData, BadSignature, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from server.errors import AuthFailed, Forbidden, TokenExpired, TokenInvalid

SALT = "pet-api.access-token"
# HMAC-SHA256 signs (ASVS 11.4.1). HMAC-SHA1, itsdangerous's default and what signed before, still verifies, so
# what was issued before the change works on: access tokens until they expire, sync cursors until replaced.
SIGNING: dict[str, Any] = {"signer_kwargs": {"digest_method": hashlib.sha256},
                           "fallback_signers": [{"digest_method": hashlib.sha1}]}
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: what a verified token says."""

    user_id: int
    scopes: frozenset[str]
    jti: str
    issued_at_ms: int
    expires_at: float
    session_id: int | None = None  # the login session the token belongs to (None: minted outside a session)

    @property
    def is_pets_admin(self) -> bool:
        return "pets:admin" in self.scopes


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    principal: Principal


class TokenSigner:
    """Signs and verifies tokens; verified tokens are remembered (bounded) so hot paths skip the HMAC."""

    def __init__(self, keys: Iterable[str], *, token_expiration: int, cache_size: int = 10_000) -> None:
        self.serializer = URLSafeTimedSerializer(list(keys), salt=SALT, **SIGNING)
        self.token_expiration = token_expiration
        self._verified: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    def issue(self, user_id: int, scopes: Iterable[str], *, session_id: int | None = None) -> IssuedToken:
        """A new token for the user, carrying its scopes, a random id, the issue time, its expiry and its session.

        The expiry is fixed here ("exp", ms) and signed: every instance honours it whatever its own
        token_expiration."""
        now_ms = int(time.time() * 1000)
        scope_list = sorted(set(scopes))
        jti = secrets.token_urlsafe(12)
        exp_ms = now_ms + self.token_expiration * 1000
        payload: dict[str, Any] = {"uid": user_id, "scp": scope_list, "jti": jti, "iat": now_ms, "exp": exp_ms}
        if session_id is not None:
            payload["sid"] = session_id
        token = self.serializer.dumps(payload)
        return IssuedToken(token, Principal(user_id, frozenset(scope_list), jti, now_ms, exp_ms / 1000, session_id))

    def verify(self, token: str) -> Principal:
        """The token's principal, or TokenInvalid / TokenExpired."""
        principal = self._verified.get(token)
        if principal is None:
            principal = self._load(token)
            self._verified[token] = principal
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        if time.time() >= principal.expires_at:
            raise TokenExpired()
        return principal

    def _load(self, token: str) -> Principal:
        if not token.isascii() or not _canonical_signature(token):  # a token is URL-safe base64 and dots
            raise TokenInvalid()
        try:
            payload = self.serializer.loads(token)  # the age is checked by verify(), from the token's own expiry
        except BadSignature:
            raise TokenInvalid() from None
        try:
            iat = int(payload["iat"])
            sid = payload.get("sid")
            # a token issued before "exp" existed lives this instance's token_expiration, as it always did
            exp_ms = int(payload["exp"]) if "exp" in payload else iat + self.token_expiration * 1000
            return Principal(int(payload["uid"]), frozenset(payload["scp"]), str(payload["jti"]), iat,
                             exp_ms / 1000, None if sid is None else int(sid))
        except (KeyError, TypeError, ValueError, OverflowError):  # e.g. "iat": Infinity or 1e400
            raise TokenInvalid() from None


def _canonical_signature(token: str) -> bool:
    """Whether the signature is in its one canonical base64 spelling.

    base64 decoding ignores the unused low bits of the last character, so a token whose last
    character was changed can still carry a valid signature; such a token is refused as tampered.
    """
    signature = token.rpartition(".")[2]
    try:
        return base64_encode(base64_decode(signature)).decode() == signature
    except BadData:  # characters outside the base64 alphabet
        return False


def bearer_token(header: str | None) -> str:
    """The token of an 'Authorization: Bearer <token>' header, or AuthFailed."""
    if not header:
        raise AuthFailed("authorization header is missing")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthFailed("authorization header must be 'Bearer <token>'")
    return token


def has_scopes(granted: frozenset[str], required: frozenset[str]) -> bool:
    """True when every required scope is granted."""
    return required <= granted


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """Handler-method decorator: authenticate the caller and demand the scopes, else 401/403."""
    required = frozenset(scopes)

    def decorator(method: F) -> F:
        @functools.wraps(method)
        async def wrapper(handler: Any, *args: Any, **kwargs: Any) -> Any:
            principal: Principal = await handler.authenticate()
            if not has_scopes(principal.scopes, required):
                raise Forbidden(f"missing scope: {' '.join(sorted(required - principal.scopes))}")
            return await method(handler, *args, **kwargs)

        wrapper.required_scopes = required  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator
