"""Tokens (signing, rotation, expiry before bad signature, tampering), bearer parsing and the scope decorator."""

import hashlib
import string
import time
from dataclasses import dataclass
from typing import Any

import pytest
from itsdangerous import BadSignature, URLSafeTimedSerializer

from server.auth import SALT, Principal, TokenSigner, bearer_token, has_scopes, require_scopes
from server.errors import AuthFailed, Forbidden, TokenExpired, TokenInvalid

KEY = "k3y-for-unit-tests-0123456789abcdefXYZ"


def test_issued_token_verifies_to_its_principal():
    signer = TokenSigner([KEY], token_expiration=60)
    issued = signer.issue(7, ["pets:read", "users:me", "pets:read"])
    principal = TokenSigner([KEY], token_expiration=60).verify(issued.token)  # a fresh signer: no cache
    assert principal == issued.principal
    assert principal.user_id == 7
    assert principal.scopes == frozenset({"pets:read", "users:me"})
    assert abs(principal.expires_at - (principal.issued_at_ms / 1000 + 60)) < 1e-6
    assert len(principal.jti) >= 16
    assert signer.issue(7, []).principal.jti != issued.principal.jti


def test_rotation_the_newest_key_signs_and_every_key_verifies():
    old_token = TokenSigner(["old-key-0123456789"], token_expiration=60).issue(1, ["a"]).token
    rotated = TokenSigner(["old-key-0123456789", "new-key-0123456789"], token_expiration=60)
    assert rotated.verify(old_token).user_id == 1
    new_token = rotated.issue(2, ["b"]).token
    assert TokenSigner(["new-key-0123456789"], token_expiration=60).verify(new_token).user_id == 2
    with pytest.raises(TokenInvalid):
        TokenSigner(["old-key-0123456789"], token_expiration=60).verify(new_token)


def _aged_token(seconds_ago: int, key: str = KEY, digest: Any = hashlib.sha256) -> str:
    """A correctly signed token whose itsdangerous timestamp is in the past (HMAC-SHA256 unless told)."""
    serializer = URLSafeTimedSerializer([key], salt=SALT, signer_kwargs={"digest_method": digest})
    serializer.get_timestamp = lambda: int(time.time()) - seconds_ago  # type: ignore[method-assign]
    return serializer.dumps({"uid": 1, "scp": [], "jti": "j", "iat": int((time.time() - seconds_ago) * 1000)})


def test_expired_token_is_expired_not_invalid():
    # SignatureExpired subclasses BadSignature: caught in the wrong order, this would say "invalid".
    with pytest.raises(TokenExpired):
        TokenSigner([KEY], token_expiration=5).verify(_aged_token(30))
    assert TokenSigner([KEY], token_expiration=60).verify(_aged_token(30)).user_id == 1


def test_new_tokens_are_hmac_sha256_and_sha1_ones_from_before_verify_until_they_expire():
    token = TokenSigner([KEY], token_expiration=60).issue(7, ["a"]).token
    sha256_only = URLSafeTimedSerializer([KEY], salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})
    assert sha256_only.loads(token)["uid"] == 7
    assert len(token.rpartition(".")[2]) == 43  # 32 bytes of HMAC-SHA256 in unpadded base64
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer([KEY], salt=SALT).loads(token)  # itsdangerous's SHA-1 default does not take it
    signer = TokenSigner([KEY], token_expiration=60)
    before = _aged_token(30, digest=hashlib.sha1)  # issued by the previous release
    assert len(before.rpartition(".")[2]) == 27
    assert signer.verify(before).user_id == 1
    with pytest.raises(TokenExpired):
        TokenSigner([KEY], token_expiration=5).verify(_aged_token(30, digest=hashlib.sha1))
    with pytest.raises(TokenInvalid):
        signer.verify(_aged_token(30, key="another-key-0123456789", digest=hashlib.sha1))
    with pytest.raises(TokenInvalid):
        signer.verify(_aged_token(30, digest=hashlib.md5))  # only the two digests, never one a token names


def test_cached_token_still_expires():
    signer = TokenSigner([KEY], token_expiration=1)
    token = signer.issue(1, []).token
    signer.verify(token)
    time.sleep(1.1)
    with pytest.raises(TokenExpired):
        signer.verify(token)


def test_expired_token_with_a_wrong_key_is_invalid():
    with pytest.raises(TokenInvalid):
        TokenSigner([KEY], token_expiration=5).verify(_aged_token(30, key="another-key-0123456789"))


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1],
    lambda t: t + "A",
    lambda t: "x" + t,
    lambda t: t.replace(".", "", 1),
    lambda t: t.rsplit(".", 1)[0],
    lambda t: "not-a-token",
    lambda t: t[:-2] + "!!",
    lambda t: "\ud800" + t,  # a lone surrogate: not encodable, itsdangerous raised UnicodeEncodeError
    lambda t: "é" + t,
])
def test_malformed_tokens_are_invalid(mangle):
    token = TokenSigner([KEY], token_expiration=60).issue(1, ["a"]).token
    with pytest.raises(TokenInvalid):
        TokenSigner([KEY], token_expiration=60).verify(mangle(token))


def test_every_one_character_change_of_the_signature_is_invalid():
    # base64 ignores the last character's unused bits: without a canonical check, 3 of 63 changes pass.
    signer = TokenSigner([KEY], token_expiration=60)
    for _ in range(10):
        token = signer.issue(1, ["a"]).token
        head, signature = token.rsplit(".", 1)
        for position in (0, len(signature) // 2, len(signature) - 1):
            for char in string.ascii_letters + string.digits + "-_":
                if char == signature[position]:
                    continue
                tampered = f"{head}.{signature[:position]}{char}{signature[position + 1:]}"
                with pytest.raises(TokenInvalid):
                    signer.verify(tampered)


def test_payload_without_the_expected_fields_is_invalid():
    token = URLSafeTimedSerializer([KEY], salt=SALT).dumps({"uid": "x"})
    with pytest.raises(TokenInvalid):
        TokenSigner([KEY], token_expiration=60).verify(token)


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc.def", "abc.def"),
    ("bearer abc.def", "abc.def"),
    ("Bearer   abc.def  ", "abc.def"),
])
def test_bearer_header_gives_the_token(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc",
                                    "Bearer abc def", "abc.def"])
def test_missing_or_malformed_bearer_header_fails(header):
    with pytest.raises(AuthFailed) as caught:
        bearer_token(header)
    assert caught.value.code == 1003
    assert caught.value.status == 401


def test_has_scopes_demands_every_required_scope():
    granted = frozenset({"pets:read", "users:me"})
    assert has_scopes(granted, frozenset())
    assert has_scopes(granted, frozenset({"pets:read"}))
    assert has_scopes(granted, frozenset({"pets:read", "users:me"}))
    assert not has_scopes(granted, frozenset({"pets:read", "pets:write"}))
    assert not has_scopes(frozenset(), frozenset({"pets:read"}))


@dataclass
class _Caller:
    """Stands in for a handler: authenticate() returns a fixed principal."""

    principal: Principal

    async def authenticate(self) -> Principal:
        return self.principal


@pytest.mark.gen_test
async def test_require_scopes_passes_with_the_scopes_and_refuses_without():
    @require_scopes("pets:write", "pets:read")
    async def handler_method(handler, value):
        """Docstring kept."""
        return value * 2

    allowed = _Caller(Principal(1, frozenset({"pets:read", "pets:write", "x"}), "j", 0, time.time() + 60))
    refused = _Caller(Principal(1, frozenset({"pets:read"}), "j", 0, time.time() + 60))
    assert await handler_method(allowed, 21) == 42
    with pytest.raises(Forbidden) as caught:
        await handler_method(refused, 21)
    assert caught.value.code == 1004
    assert "pets:write" in str(caught.value)
    assert handler_method.required_scopes == frozenset({"pets:read", "pets:write"})
    assert handler_method.__doc__ == "Docstring kept."
